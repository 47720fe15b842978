//! Conversions between Bifrost's unified (OpenAI-shaped) schema and Gemini's wire types.
//!
//! Plain functions without I/O, so the provider and the Google-GenAI-compatible route can
//! share them.
//!
//! Rules worth knowing:
//! - **Schemas are passed as given.** Tool parameters go out as `parametersJsonSchema` and a
//!   `json_schema` response format as `responseJsonSchema`: both take standard JSON Schema.
//!   The older `parameters`/`responseSchema` fields take Google's OpenAPI subset, which
//!   rejects `additionalProperties`, `$ref`/`$defs`, `$schema`, `const`, `oneOf`/`allOf` and
//!   friends with a 400; using the JSON-Schema fields means nothing has to be stripped. A
//!   caller who wants the old fields can still send them as extras (see below).
//! - **Extras** (`params.extra`, parameters the unified schema does not name): `top_k` and
//!   every `GenerationConfig` field name (`thinkingConfig`, `responseModalities`, …, camelCase
//!   or snake_case) go into `generationConfig`, as do the fields of an extra
//!   `generationConfig` object; every other key goes to the body's top level exactly as given
//!   (`safetySettings`, `cachedContent`, `labels`, …). Extras win over values derived from
//!   unified parameters, since they are the caller's explicit Gemini-specific intent.
//!   `reasoning_effort` becomes a `thinkingConfig` unless one was given.
//! - Unified parameters Gemini has no field for (`user`, `logit_bias`, `parallel_tool_calls`,
//!   `stream_options`, `encoding_format`) are not sent: Gemini rejects unknown fields with a 400.
//! - **Tool-call ids.** Gemini rarely sends call ids, so calls get `call_<n>` (n counts the
//!   calls of one answer). A call's `thoughtSignature` (which Gemini 3 wants back in the
//!   history) rides in the id as `<id>__thought__<signature>` (LiteLLM's convention) and is
//!   restored when the call comes back in a request. Ids are not sent to Gemini: it matches
//!   results to calls by name and order.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::types::{
    BatchEmbedContentsRequest, Blob, Content, EmbedContentRequest, FileData, FunctionCall,
    FunctionCallingConfig, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerateContentResponse, GenerationConfig, GoogleError, ListModelsResponse, LogprobsResult,
    Part, ThinkingConfig, Tool, ToolConfig, UsageMetadata,
};
use crate::schemas::{
    BifrostError, BifrostResponse, ChatMessage, Choice, CompletionTokensDetails, EmbeddingData,
    EmbeddingInput, ErrorBody, MessageContent, ModelInfo, ModelParameters, PromptInput,
    PromptTokensDetails, ProviderKey, Role, ToolCall, Usage,
};

/// Joins a tool-call id and the Gemini `thoughtSignature` carried inside it.
pub const THOUGHT_SIGNATURE_SEPARATOR: &str = "__thought__";

/// Gemini's role for the user's turns (tool results included).
pub const ROLE_USER: &str = "user";
/// Gemini's role for the model's turns.
pub const ROLE_MODEL: &str = "model";

/// `GenerationConfig` fields, so extras naming them land inside `generationConfig`.
const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Builds a `generateContent` body from unified chat messages and parameters.
///
/// `model` is only consulted to pick the thinking control for `reasoning_effort`.
pub fn chat_request(
    model: &str,
    messages: &[ChatMessage],
    params: &ModelParameters,
) -> Result<GenerateContentRequest, BifrostError> {
    let (system_instruction, contents) = messages_to_contents(messages)?;
    let mut req = GenerateContentRequest {
        contents,
        system_instruction,
        ..GenerateContentRequest::default()
    };
    apply_params(&mut req, model, params)?;
    Ok(req)
}

/// Builds a `generateContent` body for a legacy text completion: the prompt becomes one user
/// turn. Gemini has no batch prompt, so a batch must hold exactly one string.
pub fn text_completion_request(
    model: &str,
    prompt: &PromptInput,
    params: &ModelParameters,
) -> Result<GenerateContentRequest, BifrostError> {
    let text = match prompt {
        PromptInput::Text(s) => s.as_str(),
        PromptInput::Batch(items) => match items.as_slice() {
            [Value::String(s)] => s.as_str(),
            _ => {
                return Err(BifrostError::invalid_param(
                    "prompt",
                    "gemini text completion takes exactly one string prompt",
                ));
            }
        },
    };
    let mut req = GenerateContentRequest {
        contents: vec![Content {
            role: Some(ROLE_USER.into()),
            parts: vec![Part::text(text)],
        }],
        ..GenerateContentRequest::default()
    };
    apply_params(&mut req, model, params)?;
    Ok(req)
}

/// Converts unified messages to Gemini's `systemInstruction` and `contents`.
///
/// System and developer messages (wherever they are) become `systemInstruction` parts; user
/// messages `user` turns; assistant messages `model` turns whose tool calls are
/// `functionCall` parts; tool results `functionResponse` parts of a `user` turn (consecutive
/// results share one turn, as Gemini wants one response part per call of the previous turn).
pub fn messages_to_contents(
    messages: &[ChatMessage],
) -> Result<(Option<Content>, Vec<Content>), BifrostError> {
    let mut system_parts = Vec::new();
    let mut contents: Vec<Content> = Vec::with_capacity(messages.len());
    // Call id → function name, so a tool result can name its function. Later calls with a
    // reused id win, which is right because results follow their calls.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut previous_was_result = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.role.unwrap_or(Role::User);
        let is_result = matches!(role, Role::Tool | Role::Function);
        match role {
            Role::System | Role::Developer => {
                if let Some(c) = &m.content {
                    system_parts.extend(content_parts(c, i)?);
                }
            }
            Role::User => {
                let parts = match &m.content {
                    Some(c) => content_parts(c, i)?,
                    None => Vec::new(),
                };
                contents.push(Content {
                    role: Some(ROLE_USER.into()),
                    parts,
                });
            }
            Role::Assistant | Role::Chatbot => {
                let mut parts = match &m.content {
                    Some(c) => content_parts(c, i)?,
                    None => Vec::new(),
                };
                for tc in m.tool_calls.iter().flatten() {
                    let name = tc.function.name.as_deref().unwrap_or_default();
                    if name.is_empty() {
                        return Err(BifrostError::invalid_param(
                            "messages",
                            format!("message {i}: tool call without a function name"),
                        ));
                    }
                    let mut signature = None;
                    if let Some(id) = tc.id.as_deref() {
                        call_names.insert(id, name);
                        signature = split_tool_call_id(id).1.map(str::to_owned);
                    }
                    parts.push(Part {
                        function_call: Some(FunctionCall {
                            id: None,
                            name: name.to_owned(),
                            args: Some(parse_arguments(&tc.function.arguments, i)?),
                        }),
                        thought_signature: signature,
                        ..Part::default()
                    });
                }
                if !parts.is_empty() {
                    contents.push(Content {
                        role: Some(ROLE_MODEL.into()),
                        parts,
                    });
                }
            }
            Role::Tool | Role::Function => {
                let by_id = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied());
                let Some(name) = by_id.or(m.name.as_deref()) else {
                    return Err(BifrostError::invalid_param(
                        "messages",
                        format!(
                            "message {i}: tool result's tool_call_id matches no earlier tool call"
                        ),
                    ));
                };
                let part = Part {
                    function_response: Some(FunctionResponse {
                        id: None,
                        name: name.to_owned(),
                        response: tool_result_object(m),
                        extra: Map::new(),
                    }),
                    ..Part::default()
                };
                match contents.last_mut() {
                    Some(turn) if previous_was_result => turn.parts.push(part),
                    _ => contents.push(Content {
                        role: Some(ROLE_USER.into()),
                        parts: vec![part],
                    }),
                }
            }
        }
        if !matches!(role, Role::System | Role::Developer) {
            previous_was_result = is_result;
        }
    }
    let system = (!system_parts.is_empty()).then_some(Content {
        role: None,
        parts: system_parts,
    });
    Ok((system, contents))
}

/// A tool result as Gemini's `functionResponse.response` object: a JSON-object result as
/// is, anything else wrapped as `{"content": "<text exactly as given>"}`.
pub fn tool_result_object(m: &ChatMessage) -> Map<String, Value> {
    let text = m.text_content().unwrap_or_default();
    if text.trim_start().starts_with('{')
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&text)
    {
        return obj;
    }
    let mut obj = Map::with_capacity(1);
    obj.insert("content".into(), Value::String(text));
    obj
}

/// Unified content (a string or parts) as Gemini parts. Empty text is left out (Gemini
/// rejects empty parts).
fn content_parts(content: &MessageContent, i: usize) -> Result<Vec<Part>, BifrostError> {
    let parts = match content {
        MessageContent::Text(s) if s.is_empty() => Vec::new(),
        MessageContent::Text(s) => vec![Part::text(s.clone())],
        MessageContent::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match p.kind.as_str() {
                    "text" | "input_text" => {
                        if let Some(t) = p.text.as_deref().filter(|t| !t.is_empty()) {
                            out.push(Part::text(t));
                        }
                    }
                    "image_url" => {
                        let url = p.image_url.as_ref().map(|u| u.url.as_str()).unwrap_or("");
                        out.push(media_part(url, i)?);
                    }
                    "input_audio" => out.push(audio_part(p.input_audio.as_ref(), i)?),
                    "file" => out.push(file_part(p.file.as_ref(), i)?),
                    other => {
                        return Err(BifrostError::invalid_param(
                            "messages",
                            format!(
                                "message {i}: content part type {other:?} is not supported by gemini"
                            ),
                        ));
                    }
                }
            }
            out
        }
    };
    Ok(parts)
}

/// An image (or any media) reference: a `data:` URI inline, a URL by reference.
fn media_part(url: &str, i: usize) -> Result<Part, BifrostError> {
    if url.starts_with("data:") {
        let (mime_type, data) = parse_data_uri(url).ok_or_else(|| {
            BifrostError::invalid_param(
                "messages",
                format!("message {i}: data URI must look like data:<mime>;base64,<data>"),
            )
        })?;
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: mime_type.to_owned(),
                data: data.to_owned(),
            }),
            ..Part::default()
        });
    }
    if ["https://", "http://", "gs://"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: mime_from_url(url).map(str::to_owned),
                file_uri: url.to_owned(),
            }),
            ..Part::default()
        });
    }
    Err(BifrostError::invalid_param(
        "messages",
        format!("message {i}: media URL must be a data: URI or an http(s) URL"),
    ))
}

fn audio_part(audio: Option<&Value>, i: usize) -> Result<Part, BifrostError> {
    let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
    let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
    let (Some(data), Some(format)) = (data, format) else {
        return Err(BifrostError::invalid_param(
            "messages",
            format!("message {i}: input_audio needs data and format"),
        ));
    };
    Ok(Part {
        inline_data: Some(Blob {
            mime_type: format!("audio/{format}"),
            data: data.to_owned(),
        }),
        ..Part::default()
    })
}

/// OpenAI `file` parts: `file_data` (a data URI) inline, `file_id` (a Gemini file URI or
/// `files/…` name) by reference.
fn file_part(file: Option<&Value>, i: usize) -> Result<Part, BifrostError> {
    let get = |k: &str| file.and_then(|f| f.get(k)).and_then(Value::as_str);
    if let Some(data) = get("file_data") {
        return media_part(data, i);
    }
    if let Some(id) = get("file_id").or_else(|| get("file_url")) {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: get("mime_type").map(str::to_owned),
                file_uri: id.to_owned(),
            }),
            ..Part::default()
        });
    }
    Err(BifrostError::invalid_param(
        "messages",
        format!("message {i}: file part needs file_data or file_id"),
    ))
}

/// `data:<mime>[;params];base64,<data>` → (mime, data).
fn parse_data_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let meta = meta.strip_suffix(";base64")?;
    let mime = meta.split(';').next().unwrap_or("");
    (!mime.is_empty() && !data.is_empty()).then_some((mime, data))
}

/// A MIME type guessed from a URL's extension, for `fileData` (Gemini needs one for most
/// web URLs; YouTube links go without).
fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

/// A tool call's JSON-text arguments as the object Gemini wants (empty text → `{}`).
fn parse_arguments(arguments: &str, i: usize) -> Result<Map<String, Value>, BifrostError> {
    if arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(BifrostError::invalid_param(
            "messages",
            format!("message {i}: tool call arguments must be a JSON object"),
        )),
        Err(e) => Err(BifrostError::invalid_param(
            "messages",
            format!("message {i}: tool call arguments are not valid JSON: {e}"),
        )),
    }
}

/// Splits `<id>__thought__<signature>` into the id and the signature.
pub fn split_tool_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(THOUGHT_SIGNATURE_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}

/// A tool-call id carrying `signature`, if any.
pub fn join_tool_call_id(id: &str, signature: Option<&str>) -> String {
    match signature {
        Some(sig) => format!("{id}{THOUGHT_SIGNATURE_SEPARATOR}{sig}"),
        None => id.to_owned(),
    }
}

/// Fills `generationConfig`, tools, tool config and extras from unified parameters.
fn apply_params(
    req: &mut GenerateContentRequest,
    model: &str,
    p: &ModelParameters,
) -> Result<(), BifrostError> {
    let mut gc = GenerationConfig {
        temperature: p.temperature,
        top_p: p.top_p,
        max_output_tokens: p.max_completion_tokens.or(p.max_tokens),
        stop_sequences: stop_sequences(p.stop.as_ref())?,
        candidate_count: p.n,
        seed: p.seed,
        presence_penalty: p.presence_penalty,
        frequency_penalty: p.frequency_penalty,
        response_logprobs: p.logprobs,
        logprobs: p.top_logprobs,
        ..GenerationConfig::default()
    };
    if let Some(rf) = &p.response_format {
        apply_response_format(&mut gc, rf)?;
    }
    if let Some(tools) = p.tools.as_deref().filter(|t| !t.is_empty()) {
        req.tools = Some(vec![tools_to_gemini(tools)?]);
    }
    if let Some(choice) = &p.tool_choice {
        req.tool_config = Some(tool_choice_to_gemini(choice)?);
    }

    let mut gen_extra = Map::new();
    let mut effort = None;
    for (key, value) in &p.extra {
        match key.as_str() {
            "reasoning_effort" => effort = value.as_str(),
            "generationConfig" | "generation_config" => {
                let Value::Object(obj) = value else {
                    return Err(BifrostError::invalid_param(
                        key,
                        "generationConfig must be an object",
                    ));
                };
                for (k, v) in obj {
                    gen_extra.insert(generation_key(k).into_owned(), v.clone());
                }
            }
            _ => {
                let gk = generation_key(key);
                if GENERATION_CONFIG_FIELDS.contains(&gk.as_ref()) {
                    gen_extra.insert(gk.into_owned(), value.clone());
                } else {
                    apply_top_level_extra(req, key, value)?;
                }
            }
        }
    }
    if let Some(effort) = effort
        && !gen_extra.contains_key("thinkingConfig")
    {
        gc.thinking_config = Some(thinking_for_effort(model, effort));
    }
    if !gen_extra.is_empty() {
        gc = overlay(&gc, gen_extra, "generationConfig")?;
    }
    if gc != GenerationConfig::default() {
        req.generation_config = Some(gc);
    }
    Ok(())
}

/// The camelCase `GenerationConfig` name for a known field given in snake_case (`top_k` →
/// `topK`); other keys unchanged.
fn generation_key(key: &str) -> Cow<'_, str> {
    if !key.contains('_') {
        return Cow::Borrowed(key);
    }
    let camel = camel_case(key);
    if GENERATION_CONFIG_FIELDS.contains(&camel.as_str()) {
        Cow::Owned(camel)
    } else {
        Cow::Borrowed(key)
    }
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A top-level extra: typed fields of the body are replaced (so a key never appears twice),
/// anything else is kept as given.
fn apply_top_level_extra(
    req: &mut GenerateContentRequest,
    key: &str,
    value: &Value,
) -> Result<(), BifrostError> {
    fn parse<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, BifrostError> {
        serde_json::from_value(value.clone())
            .map_err(|e| BifrostError::invalid_param(key, format!("invalid gemini {key}: {e}")))
    }
    match key {
        "safetySettings" | "safety_settings" => req.safety_settings = Some(parse(key, value)?),
        "toolConfig" | "tool_config" => req.tool_config = Some(parse(key, value)?),
        "systemInstruction" | "system_instruction" => {
            req.system_instruction = Some(parse(key, value)?);
        }
        "cachedContent" | "cached_content" => req.cached_content = Some(parse(key, value)?),
        "contents" => req.contents = parse(key, value)?,
        "model" => req.model = Some(parse(key, value)?),
        "tools" => {
            let more: Vec<Tool> = parse(key, value)?;
            req.tools.get_or_insert_with(Vec::new).extend(more);
        }
        _ => {
            req.extra.insert(key.to_owned(), value.clone());
        }
    }
    Ok(())
}

/// `value` with `extra`'s keys set over it (for typed structs with a flattened `extra`).
fn overlay<T: Serialize + DeserializeOwned>(
    value: &T,
    extra: Map<String, Value>,
    what: &str,
) -> Result<T, BifrostError> {
    let mut v = serde_json::to_value(value)
        .map_err(|e| BifrostError::invalid_param(what, format!("invalid gemini {what}: {e}")))?;
    if let Value::Object(obj) = &mut v {
        obj.extend(extra);
    }
    serde_json::from_value(v)
        .map_err(|e| BifrostError::invalid_param(what, format!("invalid gemini {what}: {e}")))
}

fn stop_sequences(stop: Option<&Value>) -> Result<Option<Vec<String>>, BifrostError> {
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| BifrostError::invalid_param("stop", "stop must be strings")),
        Some(_) => Err(BifrostError::invalid_param(
            "stop",
            "stop must be a string or a list of strings",
        )),
    }
}

/// `json_object` → JSON output; `json_schema` → JSON output constrained by the schema,
/// passed as given in `responseJsonSchema`.
fn apply_response_format(gc: &mut GenerationConfig, rf: &Value) -> Result<(), BifrostError> {
    match rf.get("type").and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => gc.response_mime_type = Some("application/json".into()),
        Some("json_schema") => {
            gc.response_mime_type = Some("application/json".into());
            gc.response_json_schema = rf.pointer("/json_schema/schema").cloned();
        }
        Some(other) => {
            return Err(BifrostError::invalid_param(
                "response_format",
                format!("response_format type {other:?} is not supported by gemini"),
            ));
        }
    }
    Ok(())
}

/// Unified tools as one Gemini tool holding every function declaration.
pub fn tools_to_gemini(tools: &[crate::schemas::Tool]) -> Result<Tool, BifrostError> {
    let mut declarations = Vec::with_capacity(tools.len());
    for t in tools {
        if t.kind != "function" {
            return Err(BifrostError::invalid_param(
                "tools",
                format!("tool type {:?} is not supported by gemini", t.kind),
            ));
        }
        declarations.push(FunctionDeclaration {
            name: t.function.name.clone(),
            description: t.function.description.clone(),
            parameters: None,
            parameters_json_schema: t.function.parameters.clone(),
            extra: Map::new(),
        });
    }
    Ok(Tool {
        function_declarations: Some(declarations),
        extra: Map::new(),
    })
}

/// OpenAI `tool_choice` as Gemini's `functionCallingConfig`: `auto` → `AUTO`, `none` →
/// `NONE`, `required` → `ANY`, a named function → `ANY` limited to it, `allowed_tools` →
/// `ANY` (required) or `VALIDATED` (auto) limited to the listed functions.
pub fn tool_choice_to_gemini(choice: &Value) -> Result<ToolConfig, BifrostError> {
    let invalid = || {
        BifrostError::invalid_param(
            "tool_choice",
            "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}",
        )
    };
    let names_of = |tools: Option<&Value>| -> Option<Vec<String>> {
        tools?
            .as_array()?
            .iter()
            .map(|t| {
                t.pointer("/function/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    };
    let (mode, names) = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => ("AUTO", None),
            "none" => ("NONE", None),
            "required" | "any" => ("ANY", None),
            _ => return Err(invalid()),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(invalid)?;
                ("ANY", Some(vec![name.to_owned()]))
            }
            Some("allowed_tools") => {
                let at = o.get("allowed_tools").ok_or_else(invalid)?;
                let names = names_of(at.get("tools")).ok_or_else(invalid)?;
                match at.get("mode").and_then(Value::as_str) {
                    Some("required") => ("ANY", Some(names)),
                    _ => ("VALIDATED", Some(names)),
                }
            }
            _ => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    Ok(ToolConfig {
        function_calling_config: Some(FunctionCallingConfig {
            mode: Some(mode.into()),
            allowed_function_names: names,
        }),
        extra: Map::new(),
    })
}

/// OpenAI's `reasoning_effort` as a thinking config, the way Google's own
/// OpenAI-compatibility layer maps it: a `thinkingLevel` for Gemini 3 models (which cannot
/// turn thinking off, so `none` is `low`), a `thinkingBudget` for the others.
fn thinking_for_effort(model: &str, effort: &str) -> ThinkingConfig {
    let gemini3 = model
        .rsplit('/')
        .next()
        .is_some_and(|m| m.starts_with("gemini-3"));
    if gemini3 {
        let level = match effort {
            "none" | "low" => "low",
            "minimal" => "minimal",
            "medium" => "medium",
            _ => "high",
        };
        return ThinkingConfig {
            thinking_level: Some(level.into()),
            ..ThinkingConfig::default()
        };
    }
    let budget = match effort {
        "none" => 0,
        "minimal" | "low" => 1024,
        "medium" => 8192,
        _ => 24576,
    };
    ThinkingConfig {
        thinking_budget: Some(budget),
        ..ThinkingConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings and models
// ---------------------------------------------------------------------------------------------

/// The body of an embedding call, and whether it is a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedRequest {
    /// One input: `:embedContent`.
    Single(EmbedContentRequest),
    /// Several inputs: `:batchEmbedContents`.
    Batch(BatchEmbedContentsRequest),
}

/// Unified embedding input as `:embedContent` (one text) or `:batchEmbedContents`.
///
/// `model_resource` is `models/<model>`. `dimensions` becomes `outputDimensionality`; the
/// extras `taskType`/`title` (or snake_case) go into each request, other extras to the
/// body's top level as given. Gemini embeds text only, so token arrays are rejected.
pub fn embedding_request(
    model_resource: &str,
    input: &EmbeddingInput,
    params: &ModelParameters,
) -> Result<EmbedRequest, BifrostError> {
    let texts: Vec<&str> = match input {
        EmbeddingInput::Text(s) => vec![s.as_str()],
        EmbeddingInput::Texts(v) if !v.is_empty() => v.iter().map(String::as_str).collect(),
        EmbeddingInput::Texts(_) => {
            return Err(BifrostError::invalid_param("input", "input is empty"));
        }
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(BifrostError::invalid_param(
                "input",
                "gemini embeddings take text, not token arrays",
            ));
        }
    };
    let mut task_type = None;
    let mut title = None;
    let mut top = Map::new();
    for (k, v) in &params.extra {
        match k.as_str() {
            "taskType" | "task_type" => task_type = v.as_str().map(str::to_owned),
            "title" => title = v.as_str().map(str::to_owned),
            _ => {
                top.insert(k.clone(), v.clone());
            }
        }
    }
    let one = |text: &str| EmbedContentRequest {
        model: Some(model_resource.to_owned()),
        content: Content {
            role: None,
            parts: vec![Part::text(text)],
        },
        task_type: task_type.clone(),
        title: title.clone(),
        output_dimensionality: params.dimensions,
        extra: Map::new(),
    };
    Ok(match texts.as_slice() {
        [text] => {
            let mut req = one(text);
            req.extra = top;
            EmbedRequest::Single(req)
        }
        _ => EmbedRequest::Batch(BatchEmbedContentsRequest {
            requests: texts.iter().map(|t| one(t)).collect(),
            extra: top,
        }),
    })
}

/// Gemini vectors as an OpenAI embedding list; `base64` encodes each vector as
/// little-endian `f32`s, as OpenAI does.
pub fn embedding_response(model: &str, vectors: Vec<Vec<f64>>, base64: bool) -> BifrostResponse {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(i, values)| EmbeddingData {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            object: "embedding".into(),
            embedding: if base64 {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "OpenAI's base64 embeddings are f32"
                )]
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|v| (*v as f32).to_le_bytes())
                    .collect();
                Value::String(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &bytes,
                ))
            } else {
                json!(values)
            },
        })
        .collect();
    BifrostResponse {
        object: "list".into(),
        model: model.to_owned(),
        data: Some(data),
        ..BifrostResponse::default()
    }
}

/// Gemini's model list as unified models, ids `<provider>/<id>` (the `models/` prefix
/// stripped), `provider` being `gemini` or the custom provider's name.
pub fn model_infos(provider: &ProviderKey, list: ListModelsResponse) -> Vec<ModelInfo> {
    list.models
        .into_iter()
        .map(|m| {
            let id = m.name.strip_prefix("models/").unwrap_or(&m.name);
            ModelInfo {
                id: format!("{provider}/{id}"),
                object: "model".into(),
                created: 0,
                owned_by: "google".into(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Gemini's `finishReason` as OpenAI's: `STOP` → `stop` (`tool_calls` when the answer
/// called functions), `MAX_TOKENS` → `length`, blocking reasons → `content_filter`,
/// anything else → `stop`.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "STOP" if has_tool_calls => "tool_calls",
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ => "stop",
    }
}

/// Gemini's usage as OpenAI's. Thinking tokens count as completion tokens (as OpenAI counts
/// reasoning) and are reported in `reasoning_tokens`; tool-use prompt tokens count as
/// prompt tokens; cached tokens (already inside the prompt count) in `cached_tokens`.
pub fn usage(u: &UsageMetadata) -> Usage {
    // Saturating: the counts come from the upstream's JSON, which may say anything.
    let prompt = u
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(u.tool_use_prompt_token_count.unwrap_or(0));
    let completion = u
        .candidates_token_count
        .unwrap_or(0)
        .saturating_add(u.thoughts_token_count.unwrap_or(0));
    let audio = u.prompt_tokens_details.as_ref().and_then(|d| {
        d.iter()
            .find(|m| m.modality == "AUDIO")
            .map(|m| m.token_count)
    });
    let prompt_details = (u.cached_content_token_count.is_some() || audio.is_some()).then_some(
        PromptTokensDetails {
            cached_tokens: u.cached_content_token_count,
            audio_tokens: audio,
        },
    );
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: u
            .total_token_count
            .unwrap_or(prompt.saturating_add(completion)),
        prompt_tokens_details: prompt_details,
        completion_tokens_details: u.thoughts_token_count.map(|t| CompletionTokensDetails {
            reasoning_tokens: Some(t),
            ..CompletionTokensDetails::default()
        }),
    }
}

/// The error for a prompt Gemini blocked (no candidates, `promptFeedback.blockReason`):
/// a 400 `content_filter` provider error naming the reason. Fallbacks may still run.
pub fn prompt_blocked(resp: &GenerateContentResponse) -> Option<BifrostError> {
    if !resp.candidates.is_empty() {
        return None;
    }
    let reason = resp.prompt_feedback.as_ref()?.block_reason.as_deref()?;
    Some(BifrostError::provider(
        400,
        ErrorBody {
            kind: Some("content_filter".into()),
            code: Some(reason.to_owned()),
            message: format!("gemini blocked the prompt: {reason}"),
            param: None,
        },
    ))
}

/// A Google error (`google.rpc.Status`) as a provider error: the `status` name as the
/// type, Google's message kept. `http_status` is used when the body carries no code.
pub fn google_error(http_status: u16, e: GoogleError) -> BifrostError {
    let status = if (400..=599).contains(&e.code) {
        e.code
    } else {
        http_status
    };
    BifrostError::provider(
        status,
        ErrorBody {
            kind: e.status,
            code: None,
            message: e.message,
            param: None,
        },
    )
}

/// What one candidate's parts say, in unified terms.
#[derive(Debug, Default)]
struct Converted {
    text: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
}

/// Splits parts into answer text, thought text and tool calls. `next_call` numbers the
/// synthesized call ids (`call_<n>`) and stream indexes. Code-execution parts are rendered as
/// Markdown code blocks so nothing the model produced is lost.
fn convert_parts(content: Option<&Content>, next_call: &mut u32) -> Converted {
    let mut out = Converted::default();
    for part in content.map(|c| c.parts.as_slice()).unwrap_or_default() {
        if let Some(fc) = &part.function_call {
            let n = *next_call;
            *next_call += 1;
            let base = fc.id.clone().unwrap_or_else(|| format!("call_{n}"));
            let arguments = match &fc.args {
                Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".into()),
                None => "{}".into(),
            };
            out.tool_calls.push(ToolCall {
                index: Some(n),
                id: Some(join_tool_call_id(&base, part.thought_signature.as_deref())),
                kind: Some("function".into()),
                function: crate::schemas::FunctionCall {
                    name: Some(fc.name.clone()),
                    arguments,
                },
            });
        } else if let Some(text) = &part.text {
            if part.thought == Some(true) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        } else if let Some(code) = &part.executable_code {
            let lang = code.language.to_ascii_lowercase();
            out.text
                .push_str(&format!("\n```{lang}\n{}\n```\n", code.code));
        } else if let Some(result) = &part.code_execution_result {
            let output = result.output.as_deref().unwrap_or("");
            out.text.push_str(&format!("\n```\n{output}\n```\n"));
        }
    }
    out
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Gemini's `logprobsResult` in OpenAI's `logprobs` shape (`{"content": [...]}`).
pub fn logprobs(r: &LogprobsResult) -> Value {
    let entry = |c: &super::types::LogprobCandidate| json!({"token": c.token, "logprob": c.log_probability, "bytes": null});
    let content: Vec<Value> = r
        .chosen_candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let top: Vec<Value> = r
                .top_candidates
                .get(i)
                .map(|t| t.candidates.iter().map(entry).collect())
                .unwrap_or_default();
            e["top_logprobs"] = Value::Array(top);
            e
        })
        .collect();
    json!({ "content": content })
}

/// Seconds since the Unix epoch (Gemini responses carry no creation time).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A `generateContent` answer as a unified `chat.completion` (one choice per candidate).
pub fn chat_response(
    resp: GenerateContentResponse,
    requested_model: &str,
) -> Result<BifrostResponse, BifrostError> {
    if let Some(e) = prompt_blocked(&resp) {
        return Err(e);
    }
    if resp.candidates.is_empty() {
        return Err(BifrostError::bad_upstream_response(
            "gemini returned no candidates",
        ));
    }
    let choices = resp
        .candidates
        .iter()
        .enumerate()
        .map(|(pos, c)| {
            let mut next_call = 0;
            let conv = convert_parts(c.content.as_ref(), &mut next_call);
            let has_calls = !conv.tool_calls.is_empty();
            let tool_calls = has_calls.then(|| {
                conv.tool_calls
                    .into_iter()
                    .map(|tc| ToolCall { index: None, ..tc })
                    .collect()
            });
            Choice {
                index: c.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX)),
                message: Some(ChatMessage {
                    role: Some(Role::Assistant),
                    content: non_empty(conv.text).map(MessageContent::Text),
                    tool_calls,
                    reasoning_content: non_empty(conv.reasoning),
                    ..ChatMessage::default()
                }),
                finish_reason: Some(
                    finish_reason(c.finish_reason.as_deref().unwrap_or("STOP"), has_calls).into(),
                ),
                logprobs: c.logprobs_result.as_ref().map(logprobs),
                ..Choice::default()
            }
        })
        .collect();
    Ok(BifrostResponse {
        id: resp.response_id.unwrap_or_default(),
        object: "chat.completion".into(),
        created: now_secs(),
        model: resp
            .model_version
            .unwrap_or_else(|| requested_model.to_owned()),
        choices: Some(choices),
        usage: resp.usage_metadata.as_ref().map(usage),
        ..BifrostResponse::default()
    })
}

/// A `generateContent` answer as a unified `text_completion`.
pub fn text_completion_response(
    resp: GenerateContentResponse,
    requested_model: &str,
) -> Result<BifrostResponse, BifrostError> {
    let mut out = chat_response(resp, requested_model)?;
    out.object = "text_completion".into();
    for c in out.choices.iter_mut().flatten() {
        let msg = c.message.take();
        c.text = Some(
            msg.as_ref()
                .and_then(ChatMessage::text_content)
                .unwrap_or_default(),
        );
    }
    Ok(out)
}

/// Turns `streamGenerateContent` events into `chat.completion.chunk`s.
///
/// Each event yields zero or more chunks: one per candidate with something to say (the
/// first carries `role: assistant`), function calls whole in one tool-call delta (index, id,
/// name, full arguments). Usage goes on the finishing chunk, or, when the caller asked for
/// `stream_options.include_usage`, in a final chunk with no choices (OpenAI's shape).
#[derive(Debug)]
pub struct ChatStream {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    candidates: Vec<CandidateState>,
    usage: Option<UsageMetadata>,
    finished: bool,
}

#[derive(Debug, Default, Clone)]
struct CandidateState {
    index: u32,
    started: bool,
    next_call: u32,
    called: bool,
    finished: bool,
}

impl ChatStream {
    /// A converter for one stream of `requested_model`.
    pub fn new(requested_model: &str, include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: requested_model.to_owned(),
            created: now_secs(),
            include_usage,
            candidates: Vec::new(),
            usage: None,
            finished: false,
        }
    }

    /// True once every candidate seen has sent its `finishReason`: the stream may end now.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn candidate(&mut self, index: u32) -> &mut CandidateState {
        let pos = match self.candidates.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.candidates.push(CandidateState {
                    index,
                    ..CandidateState::default()
                });
                self.candidates.len() - 1
            }
        };
        &mut self.candidates[pos]
    }

    fn chunk(&self, choices: Vec<Choice>, usage: Option<Usage>) -> BifrostResponse {
        BifrostResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: Some(choices),
            usage,
            ..BifrostResponse::default()
        }
    }

    /// Converts one event. A blocked prompt is an error.
    pub fn push(
        &mut self,
        event: GenerateContentResponse,
    ) -> Result<Vec<BifrostResponse>, BifrostError> {
        if let Some(e) = prompt_blocked(&event) {
            return Err(e);
        }
        if self.id.is_empty()
            && let Some(id) = event.response_id
        {
            self.id = id;
        }
        if let Some(v) = event.model_version {
            self.model = v;
        }
        if event.usage_metadata.is_some() {
            self.usage = event.usage_metadata;
        }
        let mut out = Vec::new();
        let mut finished_now = false;
        for (pos, c) in event.candidates.iter().enumerate() {
            let index = c.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX));
            let state = self.candidate(index);
            let conv = convert_parts(c.content.as_ref(), &mut state.next_call);
            state.called |= !conv.tool_calls.is_empty();
            let finish = c
                .finish_reason
                .as_deref()
                .map(|r| finish_reason(r, state.called).to_owned());
            let delta = ChatMessage {
                role: (!state.started).then_some(Role::Assistant),
                content: non_empty(conv.text).map(MessageContent::Text),
                reasoning_content: non_empty(conv.reasoning),
                tool_calls: (!conv.tool_calls.is_empty()).then_some(conv.tool_calls),
                ..ChatMessage::default()
            };
            let says_something = delta.content.is_some()
                || delta.reasoning_content.is_some()
                || delta.tool_calls.is_some();
            if !says_something && finish.is_none() {
                continue;
            }
            state.started = true;
            if finish.is_some() {
                state.finished = true;
                finished_now = true;
            }
            let choice = Choice {
                index,
                delta: Some(delta),
                finish_reason: finish,
                logprobs: c.logprobs_result.as_ref().map(logprobs),
                ..Choice::default()
            };
            out.push(self.chunk(vec![choice], None));
        }
        if finished_now && self.candidates.iter().all(|c| c.finished) {
            self.finished = true;
            if let Some(u) = self.usage.as_ref().map(usage) {
                if self.include_usage {
                    out.push(self.chunk(Vec::new(), Some(u)));
                } else if let Some(last) = out.last_mut() {
                    last.usage = Some(u);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{ContentPart, FunctionDef, ImageUrl};

    fn msg(role: Role, text: &str) -> ChatMessage {
        ChatMessage::text(role, text)
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            index: None,
            id: Some(id.into()),
            kind: Some("function".into()),
            function: crate::schemas::FunctionCall {
                name: Some(name.into()),
                arguments: args.into(),
            },
        }
    }

    fn tool_result(id: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: Some(Role::Tool),
            tool_call_id: Some(id.into()),
            content: Some(MessageContent::Text(content.into())),
            ..ChatMessage::default()
        }
    }

    fn body(messages: &[ChatMessage], params: &ModelParameters) -> Value {
        serde_json::to_value(chat_request("gemini-2.0-flash", messages, params).unwrap()).unwrap()
    }

    #[test]
    fn system_and_roles() {
        let v = body(
            &[
                msg(Role::System, "be brief"),
                msg(Role::User, "hi"),
                msg(Role::Assistant, "hello"),
                msg(Role::Developer, "and kind"),
                msg(Role::User, "bye"),
            ],
            &ModelParameters::default(),
        );
        assert_eq!(
            v,
            json!({
                "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "and kind"}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "hi"}]},
                    {"role": "model", "parts": [{"text": "hello"}]},
                    {"role": "user", "parts": [{"text": "bye"}]}
                ]
            })
        );
    }

    #[test]
    fn images_audio_and_files() {
        let parts = vec![
            ContentPart {
                kind: "text".into(),
                text: Some("look".into()),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "data:image/png;base64,iVBOR".into(),
                    detail: Some("low".into()),
                }),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "https://example.com/cat.JPG?x=1".into(),
                    detail: None,
                }),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "https://www.youtube.com/watch?v=1".into(),
                    detail: None,
                }),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "input_audio".into(),
                input_audio: Some(json!({"data": "UklG", "format": "wav"})),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "file".into(),
                file: Some(
                    json!({"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}),
                ),
                ..ContentPart::default()
            },
        ];
        let m = ChatMessage {
            role: Some(Role::User),
            content: Some(MessageContent::Parts(parts)),
            ..ChatMessage::default()
        };
        let v = body(&[m], &ModelParameters::default());
        assert_eq!(
            v["contents"][0]["parts"],
            json!([
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?x=1"}},
                {"fileData": {"fileUri": "https://www.youtube.com/watch?v=1"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}
            ])
        );
        let bad = ChatMessage {
            role: Some(Role::User),
            content: Some(MessageContent::Parts(vec![ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "data:image/png,notbase64".into(),
                    detail: None,
                }),
                ..ContentPart::default()
            }])),
            ..ChatMessage::default()
        };
        let e = chat_request(
            "m",
            &[msg(Role::User, "x"), bad],
            &ModelParameters::default(),
        )
        .unwrap_err();
        assert!(
            e.error.message.starts_with("message 1:"),
            "{}",
            e.error.message
        );
    }

    #[test]
    fn tool_calls_and_results_are_not_requoted() {
        let assistant = ChatMessage {
            role: Some(Role::Assistant),
            tool_calls: Some(vec![
                call("call_0", "get_weather", r#"{"location":"Paris"}"#),
                call("call_1__thought__c2ln", "get_time", ""),
            ]),
            ..ChatMessage::default()
        };
        let v = body(
            &[
                msg(Role::User, "weather?"),
                assistant,
                tool_result("call_0", "\"sunny\""),
                tool_result("call_1__thought__c2ln", r#"{"time": "noon"}"#),
                msg(Role::User, "thanks"),
            ],
            &ModelParameters::default(),
        );
        assert_eq!(
            v["contents"],
            json!([
                {"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "c2ln"}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": "\"sunny\""}}},
                    {"functionResponse": {"name": "get_time", "response": {"time": "noon"}}}
                ]},
                {"role": "user", "parts": [{"text": "thanks"}]}
            ])
        );
    }

    #[test]
    fn bad_tool_history_names_the_message() {
        let assistant = ChatMessage {
            role: Some(Role::Assistant),
            tool_calls: Some(vec![call("c", "f", "{not json")]),
            ..ChatMessage::default()
        };
        let e = chat_request(
            "m",
            &[msg(Role::User, "x"), assistant],
            &ModelParameters::default(),
        )
        .unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert!(
            e.error
                .message
                .starts_with("message 1: tool call arguments")
        );
        let e = chat_request(
            "m",
            &[msg(Role::User, "x"), tool_result("nope", "r")],
            &ModelParameters::default(),
        )
        .unwrap_err();
        assert!(e.error.message.starts_with("message 1:"));
    }

    #[test]
    fn generation_config_tools_and_extras() {
        let mut p = ModelParameters {
            temperature: Some(0.3),
            top_p: Some(0.9),
            max_tokens: Some(10),
            max_completion_tokens: Some(20),
            stop: Some(json!("END")),
            n: Some(2),
            seed: Some(7),
            presence_penalty: Some(0.1),
            frequency_penalty: Some(0.2),
            response_format: Some(json!({"type": "json_schema", "json_schema": {"name": "x",
                "schema": {"type": "object", "additionalProperties": false, "$defs": {}}}})),
            tools: Some(vec![crate::schemas::Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: "f".into(),
                    description: Some("does f".into()),
                    parameters: Some(json!({"type": "object", "additionalProperties": false})),
                    strict: Some(true),
                },
            }]),
            tool_choice: Some(json!({"type": "function", "function": {"name": "f"}})),
            user: Some("u1".into()),
            parallel_tool_calls: Some(true),
            ..ModelParameters::default()
        };
        p.extra.insert("top_k".into(), json!(40));
        p.extra
            .insert("thinking_config".into(), json!({"thinkingBudget": 0}));
        p.extra.insert(
            "generationConfig".into(),
            json!({"responseModalities": ["TEXT"], "max_output_tokens": 99}),
        );
        p.extra.insert(
            "safetySettings".into(),
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
        );
        p.extra
            .insert("cachedContent".into(), json!("cachedContents/abc"));
        p.extra.insert("vendor_flag".into(), json!({"a": 1}));
        let v = body(&[msg(Role::User, "x")], &p);
        assert_eq!(
            v["generationConfig"],
            json!({
                "temperature": 0.3, "topP": 0.9, "maxOutputTokens": 99, "stopSequences": ["END"],
                "candidateCount": 2, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "additionalProperties": false, "$defs": {}},
                "topK": 40, "thinkingConfig": {"thinkingBudget": 0}, "responseModalities": ["TEXT"]
            })
        );
        assert_eq!(
            v["tools"],
            json!([{"functionDeclarations": [{"name": "f", "description": "does f",
                "parametersJsonSchema": {"type": "object", "additionalProperties": false}}]}])
        );
        assert_eq!(
            v["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
        );
        assert_eq!(v["safetySettings"][0]["threshold"], "BLOCK_NONE");
        assert_eq!(v["cachedContent"], "cachedContents/abc");
        assert_eq!(v["vendor_flag"], json!({"a": 1}));
        for absent in ["user", "parallel_tool_calls", "top_k", "thinking_config"] {
            assert!(v.get(absent).is_none(), "{absent} leaked");
        }
    }

    #[test]
    fn tool_choice_modes() {
        let mode = |c: Value| {
            let tc = tool_choice_to_gemini(&c).unwrap();
            serde_json::to_value(tc.function_calling_config.unwrap()).unwrap()
        };
        assert_eq!(mode(json!("auto")), json!({"mode": "AUTO"}));
        assert_eq!(mode(json!("none")), json!({"mode": "NONE"}));
        assert_eq!(mode(json!("required")), json!({"mode": "ANY"}));
        assert_eq!(
            mode(
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto",
                "tools": [{"type": "function", "function": {"name": "a"}}]}})
            ),
            json!({"mode": "VALIDATED", "allowedFunctionNames": ["a"]})
        );
        assert_eq!(
            tool_choice_to_gemini(&json!("sometimes"))
                .unwrap_err()
                .error
                .param
                .as_deref(),
            Some("tool_choice")
        );
    }

    #[test]
    fn response_format_json_object_and_reasoning_effort() {
        let mut p = ModelParameters {
            response_format: Some(json!({"type": "json_object"})),
            ..ModelParameters::default()
        };
        p.extra.insert("reasoning_effort".into(), json!("low"));
        let v = serde_json::to_value(
            chat_request("gemini-2.5-flash", &[msg(Role::User, "x")], &p).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v["generationConfig"],
            json!({"responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 1024}})
        );
        assert!(v.get("reasoning_effort").is_none());
        let v = serde_json::to_value(
            chat_request("gemini-3-pro-preview", &[msg(Role::User, "x")], &p).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "low"})
        );
    }

    #[test]
    fn text_completion_prompt_is_one_user_turn() {
        let r = text_completion_request(
            "m",
            &PromptInput::Batch(vec![json!("once upon")]),
            &ModelParameters::default(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            json!({"contents": [{"role": "user", "parts": [{"text": "once upon"}]}]})
        );
        assert!(
            text_completion_request(
                "m",
                &PromptInput::Batch(vec![json!("a"), json!("b")]),
                &ModelParameters::default()
            )
            .is_err()
        );
    }

    fn response(v: Value) -> GenerateContentResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn text_thoughts_and_usage() {
        let r = chat_response(
            response(json!({
                "candidates": [{"content": {"role": "model", "parts": [
                    {"text": "Let me think.", "thought": true},
                    {"text": "Hello "}, {"text": "world"}
                ]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2,
                    "thoughtsTokenCount": 5, "cachedContentTokenCount": 4, "totalTokenCount": 17},
                "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
            })),
            "gemini-2.5-flash",
        )
        .unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["id"], "resp-1");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gemini-2.5-flash");
        assert_eq!(
            v["choices"],
            json!([{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "Hello world", "reasoning_content": "Let me think."}}])
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 5}})
        );
    }

    #[test]
    fn function_calls_become_tool_calls() {
        let r = chat_response(
            response(
                json!({"candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                 "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "get_time", "id": "g-1"}}
            ]}, "finishReason": "STOP"}]}),
            ),
            "m",
        )
        .unwrap();
        let choice = &r.choices.as_ref().unwrap()[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
        let calls = choice.message.as_ref().unwrap().tool_calls.clone().unwrap();
        assert_eq!(
            serde_json::to_value(&calls).unwrap(),
            json!([
                {"id": "call_0__thought__c2ln", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "g-1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ])
        );
        assert_eq!(r.model, "m");
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", false), "stop");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
        ] {
            assert_eq!(finish_reason(r, false), "content_filter");
        }
        assert_eq!(finish_reason("OTHER", false), "stop");
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL", false), "stop");
        let r = chat_response(
            response(json!({"candidates": [{"finishReason": "SAFETY"}]})),
            "m",
        )
        .unwrap();
        let c = &r.choices.unwrap()[0];
        assert_eq!(c.finish_reason.as_deref(), Some("content_filter"));
        assert_eq!(c.message.as_ref().unwrap().content, None);
    }

    #[test]
    fn blocked_prompt_is_a_400_with_the_reason() {
        let e = chat_response(
            response(
                json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 3}}),
            ),
            "m",
        )
        .unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert!(!e.retryable);
        assert!(e.fallbacks_allowed());
        assert!(e.error.message.contains("PROHIBITED_CONTENT"));
        let e = chat_response(response(json!({})), "m").unwrap_err();
        assert_eq!(e.http_status(), 502);
    }

    #[test]
    fn logprobs_are_openai_shaped() {
        let r = chat_response(
            response(json!({"candidates": [{"content": {"parts": [{"text": "a"}]},
                "finishReason": "STOP", "logprobsResult": {
                    "chosenCandidates": [{"token": "a", "logProbability": -0.5}],
                    "topCandidates": [{"candidates": [{"token": "a", "logProbability": -0.5},
                                                      {"token": "b", "logProbability": -1.5}]}]}}]})),
            "m",
        )
        .unwrap();
        assert_eq!(
            r.choices.unwrap()[0].logprobs,
            Some(
                json!({"content": [{"token": "a", "logprob": -0.5, "bytes": null, "top_logprobs": [
                {"token": "a", "logprob": -0.5, "bytes": null},
                {"token": "b", "logprob": -1.5, "bytes": null}]}]})
            )
        );
    }

    #[test]
    fn text_completion_response_uses_text() {
        let r = text_completion_response(
            response(
                json!({"candidates": [{"content": {"parts": [{"text": "done"}]},
                "finishReason": "MAX_TOKENS"}]}),
            ),
            "m",
        )
        .unwrap();
        let c = &r.choices.unwrap()[0];
        assert_eq!(r.object, "text_completion");
        assert_eq!(c.text.as_deref(), Some("done"));
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        assert!(c.message.is_none());
    }

    fn event(v: Value) -> GenerateContentResponse {
        response(v)
    }

    #[test]
    fn stream_events_become_chunks() {
        let mut s = ChatStream::new("gemini-2.0-flash", false);
        let usage = json!({"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5});
        let a = s
            .push(event(json!({"candidates": [{"content": {"role": "model",
                "parts": [{"text": "Hel"}]}, "index": 0}], "responseId": "r", "modelVersion": "gemini-2.0-flash-001",
                "usageMetadata": {"promptTokenCount": 2}})))
            .unwrap();
        let b = s
            .push(event(json!({"candidates": [{"content": {"role": "model",
                "parts": [{"text": "lo"}]}, "index": 0, "finishReason": "STOP"}], "usageMetadata": usage})))
            .unwrap();
        assert!(s.is_finished());
        let all: Vec<Value> = a
            .iter()
            .chain(&b)
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["id"], "r");
        assert_eq!(all[0]["object"], "chat.completion.chunk");
        assert_eq!(all[0]["model"], "gemini-2.0-flash-001");
        assert_eq!(
            all[0]["choices"],
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}])
        );
        assert_eq!(
            all[1]["choices"],
            json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}])
        );
        assert_eq!(all[1]["usage"]["total_tokens"], 5);
        assert_eq!(all[1]["id"], "r");
    }

    #[test]
    fn stream_function_call_and_separate_usage_chunk() {
        let mut s = ChatStream::new("m", true);
        let out = s
            .push(event(json!({"candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking", "thought": true},
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]},
                "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 5, "thoughtsTokenCount": 2,
                                  "totalTokenCount": 11}})))
            .unwrap();
        assert_eq!(out.len(), 2);
        let v = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(
            v["choices"][0],
            json!({"index": 0, "finish_reason": "tool_calls", "delta": {
                "role": "assistant", "reasoning_content": "thinking",
                "tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}})
        );
        assert!(out[0].usage.is_none());
        assert_eq!(out[1].choices.as_deref(), Some(&[][..]));
        let u = out[1].usage.as_ref().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (4, 7, 11)
        );
    }

    #[test]
    fn stream_without_finish_is_not_finished_and_blocked_prompt_fails() {
        let mut s = ChatStream::new("m", false);
        s.push(event(
            json!({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}),
        ))
        .unwrap();
        assert!(!s.is_finished());
        // Usage-only events say nothing.
        assert!(
            s.push(event(json!({"usageMetadata": {"promptTokenCount": 1}})))
                .unwrap()
                .is_empty()
        );
        let e = ChatStream::new("m", false)
            .push(event(json!({"promptFeedback": {"blockReason": "SAFETY"}})))
            .unwrap_err();
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn embeddings_single_and_batch() {
        let mut p = ModelParameters {
            dimensions: Some(8),
            ..ModelParameters::default()
        };
        p.extra.insert("task_type".into(), json!("RETRIEVAL_QUERY"));
        p.extra.insert("mock".into(), json!({"delay_ms": 1}));
        let EmbedRequest::Single(one) =
            embedding_request("models/e", &EmbeddingInput::Text("hi".into()), &p).unwrap()
        else {
            panic!("expected one request")
        };
        assert_eq!(
            serde_json::to_value(one).unwrap(),
            json!({"model": "models/e", "content": {"parts": [{"text": "hi"}]},
                "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 8, "mock": {"delay_ms": 1}})
        );
        let EmbedRequest::Batch(batch) = embedding_request(
            "models/e",
            &EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
            &ModelParameters::default(),
        )
        .unwrap() else {
            panic!("expected a batch")
        };
        assert_eq!(
            serde_json::to_value(batch).unwrap(),
            json!({"requests": [
                {"model": "models/e", "content": {"parts": [{"text": "a"}]}},
                {"model": "models/e", "content": {"parts": [{"text": "b"}]}}]})
        );
        assert!(embedding_request("models/e", &EmbeddingInput::Tokens(vec![1]), &p).is_err());
        let r = embedding_response("e", vec![vec![0.5, -1.0], vec![1.0]], false);
        assert_eq!(
            serde_json::to_value(r.data.unwrap()).unwrap(),
            json!([{"index": 0, "object": "embedding", "embedding": [0.5, -1.0]},
                   {"index": 1, "object": "embedding", "embedding": [1.0]}])
        );
        // 1.0f32 little-endian is 00 00 80 3f.
        let r = embedding_response("e", vec![vec![1.0]], true);
        assert_eq!(r.data.unwrap()[0].embedding, json!("AACAPw=="));
    }

    #[test]
    fn models_and_errors() {
        let list: ListModelsResponse = serde_json::from_value(json!({"models": [
            {"name": "models/gemini-2.0-flash", "displayName": "Gemini 2.0 Flash"},
            {"name": "tunedModels/mine"}]}))
        .unwrap();
        let ids: Vec<String> = model_infos(&ProviderKey::Gemini, list)
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["gemini/gemini-2.0-flash", "gemini/tunedModels/mine"]);
        let e = google_error(
            429,
            GoogleError {
                code: 429,
                message: "Resource has been exhausted".into(),
                status: Some("RESOURCE_EXHAUSTED".into()),
                details: None,
            },
        );
        assert_eq!(e.http_status(), 429);
        assert!(e.retryable);
        assert_eq!(e.kind(), "RESOURCE_EXHAUSTED");
        assert_eq!(e.error.message, "Resource has been exhausted");
    }

    #[test]
    fn tool_call_ids_round_trip_signatures() {
        assert_eq!(
            split_tool_call_id("call_0__thought__abc"),
            ("call_0", Some("abc"))
        );
        assert_eq!(split_tool_call_id("call_0"), ("call_0", None));
        assert_eq!(
            join_tool_call_id("call_0", Some("abc")),
            "call_0__thought__abc"
        );
    }
}
