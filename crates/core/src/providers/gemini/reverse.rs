//! The Google GenAI dialect as a *client* speaks it: Gemini request bodies → the unified form,
//! and unified responses, stream chunks, embeddings and model lists → Gemini's shapes.
//!
//! [`convert`](super::convert) goes the other way (unified → Gemini, for the provider); this
//! module serves the `/genai` drop-in route, so that the official `google-genai` SDK can talk
//! to any provider. Plain functions and one stream state machine, no I/O.
//!
//! Rules worth knowing:
//! - **Same dialect.** When the model is served by a Gemini-based provider
//!   ([`Target::Gemini`]), the route also keeps the original body as a
//!   [`NativeRequest`](crate::providers::native::NativeRequest), which the Gemini provider
//!   sends as is while no plugin changed the translation. The translation itself keeps
//!   Gemini-only settings (`topK`, `thinkingConfig`, `responseSchema`, `safetySettings`,
//!   `cachedContent`, built-in tools, …) as extras under their Gemini names, which the
//!   provider merges back, so even a rewritten request loses only history details the unified
//!   form has no place for (thought parts, code-execution parts).
//! - **Other providers get a translation**, and a Gemini field the unified form cannot carry
//!   is never dropped silently: it is a 400 naming the field (`generationConfig.topK`,
//!   `safetySettings`, `tools[0].googleSearch`, …) unless the caller allowed dropping, in which
//!   case the dropped names are returned for a warning header. Unknown top-level fields are
//!   forwarded as extras, like on every other route.
//! - **Tool calls.** Gemini links a `functionResponse` to the `functionCall` of the previous
//!   model turn by `id` when there is one, else by name and order; the unified form needs ids,
//!   so calls without one get `call_<n>`. A call's `thoughtSignature` rides in its id
//!   (`convert`'s convention) and is restored on the way back. Answers' tool calls become
//!   whole `functionCall` parts: streamed argument deltas are reassembled first, because
//!   Gemini sends function calls in one piece.
//! - **Schemas.** Google's OpenAPI-subset `Schema` (upper-case `type`, `nullable`) is turned
//!   into standard JSON Schema for other providers; `parametersJsonSchema` /
//!   `responseJsonSchema` are already JSON Schema and go as given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::convert::{ROLE_MODEL, join_tool_call_id, split_tool_call_id};
use super::types::{
    Candidate, Content, ContentEmbedding, EmbedContentRequest, FunctionCall,
    GenerateContentRequest, GenerateContentResponse, GenerationConfig, ListModelsResponse,
    LogprobCandidate, LogprobsResult, Model, Part, TopCandidates, UsageMetadata,
};
use crate::schemas::{
    BifrostError, BifrostResponse, ChatMessage, ContentPart, EmbeddingInput, FunctionDef, ImageUrl,
    MessageContent, ModelList, ModelParameters, ProviderKey, Role, Tool, ToolCall, Usage,
};

/// Where a GenAI request is going, which decides how much of it must be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A Gemini-based provider: the body passes through as sent.
    Gemini,
    /// Any other provider, named by its base type (a custom provider's `base_provider_type`).
    Other(&'a ProviderKey),
}

/// A `generateContent` body in unified terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTranslation {
    /// The conversation (system instruction first).
    pub messages: Vec<ChatMessage>,
    /// Parameters, extras included.
    pub params: ModelParameters,
    /// Gemini fields the target cannot take that would change the answer: refused, or left
    /// out when the caller allows dropping unsupported fields.
    pub dropped: Vec<String>,
    /// Gemini fields left out that change nothing in the answer (e.g. a function's
    /// `responseJsonSchema`, which only describes what the caller's function returns).
    pub hints: Vec<String>,
}

/// An `embedContent` / `batchEmbedContents` body in unified terms.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedTranslation {
    /// The text(s) to embed.
    pub input: EmbeddingInput,
    /// Parameters (`dimensions`, Gemini's `taskType`/`title` as extras).
    pub params: ModelParameters,
    /// Gemini fields left out because the caller allowed dropping unsupported ones.
    pub dropped: Vec<String>,
}

/// `POST models/{model}:countTokens` body: `contents`, or a whole `generateContentRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensRequest {
    /// The conversation to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<Content>>,
    /// A full request to count (system instruction and tools included).
    #[serde(
        default,
        alias = "generate_content_request",
        skip_serializing_if = "Option::is_none"
    )]
    pub generate_content_request: Option<GenerateContentRequest>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `:countTokens` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensResponse {
    /// Tokens of the prompt.
    pub total_tokens: u64,
}

/// Collects Gemini fields the target cannot express: an error naming the first one, or, when
/// dropping is allowed, their names.
struct Unsupported<'a> {
    provider: Option<&'a ProviderKey>,
    drop: bool,
    dropped: Vec<String>,
    hints: Vec<String>,
}

impl<'a> Unsupported<'a> {
    fn new(target: Target<'a>, drop: bool) -> Self {
        Self {
            provider: match target {
                Target::Gemini => None,
                Target::Other(p) => Some(p),
            },
            drop,
            dropped: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// Records `field` as left out without changing the answer (other providers only).
    fn hint(&mut self, field: String) {
        if self.provider.is_some() {
            self.hints.push(field);
        }
    }

    /// Records `field` as unsupported: fails unless dropping is allowed. A no-op for Gemini
    /// targets, which take every field.
    fn hit(&mut self, field: impl Into<String>) -> Result<(), BifrostError> {
        let Some(provider) = self.provider else {
            return Ok(());
        };
        let field = field.into();
        if self.drop {
            self.dropped.push(field);
            return Ok(());
        }
        Err(BifrostError::invalid_param(
            &field,
            format!("{field} is not supported when the model is served by provider {provider}"),
        ))
    }

    fn is_gemini(&self) -> bool {
        self.provider.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Converts a `generateContent` body for `target`; `drop_unsupported` turns the 400 for a
/// field the target cannot express into a dropped-field entry.
pub fn chat_request_from_gemini(
    req: &GenerateContentRequest,
    target: Target<'_>,
    drop_unsupported: bool,
) -> Result<ChatTranslation, BifrostError> {
    let mut un = Unsupported::new(target, drop_unsupported);
    let mut messages = Vec::with_capacity(req.contents.len() + 1);
    if let Some(system) = &req.system_instruction
        && let Some(m) = system_message(system, &mut un)?
    {
        messages.push(m);
    }
    contents_to_messages(&req.contents, &mut messages, &mut un)?;
    let mut params = ModelParameters::default();
    if let Some(gc) = &req.generation_config {
        generation_to_params(gc, &mut params, &mut un, target)?;
    }
    if let Some(tools) = &req.tools {
        params.tools = tools_from_gemini(tools, &mut params.extra, &mut un)?;
    }
    if let Some(tc) = &req.tool_config {
        if let Some(fcc) = &tc.function_calling_config {
            params.tool_choice = tool_choice_from_gemini(fcc)?;
        }
        if un.is_gemini() && !tc.extra.is_empty() {
            params.extra.insert("toolConfig".into(), to_value(tc)?);
        }
        for k in tc.extra.keys() {
            un.hit(format!("toolConfig.{k}"))?;
        }
    }
    if let Some(s) = req.safety_settings.as_ref().filter(|s| !s.is_empty()) {
        if un.is_gemini() {
            params.extra.insert("safetySettings".into(), to_value(s)?);
        }
        un.hit("safetySettings")?;
    }
    if let Some(c) = &req.cached_content {
        if un.is_gemini() {
            params
                .extra
                .insert("cachedContent".into(), Value::String(c.clone()));
        }
        un.hit("cachedContent")?;
    }
    // Unknown top-level fields are forwarded, as on every route.
    for (k, v) in &req.extra {
        params.extra.insert(k.clone(), v.clone());
    }
    Ok(ChatTranslation {
        messages,
        params,
        dropped: un.dropped,
        hints: un.hints,
    })
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, BifrostError> {
    serde_json::to_value(v)
        .map_err(|e| BifrostError::invalid_request(format!("invalid request body: {e}")))
}

/// The system instruction as one system message (its text parts joined by newlines).
fn system_message(
    system: &Content,
    un: &mut Unsupported<'_>,
) -> Result<Option<ChatMessage>, BifrostError> {
    let mut texts = Vec::with_capacity(system.parts.len());
    for (j, p) in system.parts.iter().enumerate() {
        match &p.text {
            Some(t) => texts.push(t.as_str()),
            None => un.hit(format!("systemInstruction.parts[{j}]"))?,
        }
    }
    Ok((!texts.is_empty()).then(|| ChatMessage::text(Role::System, texts.join("\n"))))
}

/// A call of the previous model turn, waiting for its `functionResponse`.
struct PendingCall {
    /// Gemini's own id, if the call had one.
    gemini_id: Option<String>,
    /// The unified id (Gemini's, or `call_<n>`), with the thought signature.
    id: String,
    name: String,
    answered: bool,
}

/// Gemini turns as unified messages: `user` turns become user messages (tool results first,
/// as tool messages), `model` turns assistant messages with their tool calls.
fn contents_to_messages(
    contents: &[Content],
    out: &mut Vec<ChatMessage>,
    un: &mut Unsupported<'_>,
) -> Result<(), BifrostError> {
    let mut pending: Vec<PendingCall> = Vec::new();
    let mut next_call = 0u32;
    for (i, turn) in contents.iter().enumerate() {
        let is_model = turn.role.as_deref() == Some(ROLE_MODEL);
        if is_model {
            pending.clear();
            let msg = model_turn(turn, i, &mut pending, &mut next_call, un)?;
            if msg.content.is_some() || msg.tool_calls.is_some() {
                out.push(msg);
            }
            continue;
        }
        let mut parts: Vec<ContentPart> = Vec::with_capacity(turn.parts.len());
        for (j, p) in turn.parts.iter().enumerate() {
            let path = || format!("contents[{i}].parts[{j}]");
            if let Some(fr) = &p.function_response {
                let call = pending.iter_mut().filter(|c| !c.answered).find(|c| {
                    match (&fr.id, &c.gemini_id) {
                        (Some(a), Some(b)) => a == b,
                        _ => c.name == fr.name,
                    }
                });
                let id = match call {
                    Some(c) => {
                        c.answered = true;
                        c.id.clone()
                    }
                    None if un.is_gemini() => fr.id.clone().unwrap_or_else(|| {
                        next_call += 1;
                        format!("call_{}", next_call - 1)
                    }),
                    None => {
                        return Err(BifrostError::invalid_param(
                            &format!("{}.functionResponse", path()),
                            format!(
                                "{}: functionResponse for {:?} answers no functionCall of the previous model turn",
                                path(),
                                fr.name
                            ),
                        ));
                    }
                };
                for k in fr.extra.keys() {
                    un.hit(format!("{}.functionResponse.{k}", path()))?;
                }
                let content = serde_json::to_string(&fr.response).map_err(|e| {
                    BifrostError::invalid_param(&path(), format!("{}: {e}", path()))
                })?;
                out.push(ChatMessage {
                    role: Some(Role::Tool),
                    content: Some(MessageContent::Text(content)),
                    tool_call_id: Some(id),
                    // Gemini-bound requests keep the name (the provider matches by it);
                    // OpenAI-style tool messages have no `name`.
                    name: un.is_gemini().then(|| fr.name.clone()),
                    ..ChatMessage::default()
                });
                continue;
            }
            if let Some(part) = user_part(p, &path(), un)? {
                parts.push(part);
            }
        }
        if parts.is_empty() {
            continue;
        }
        let content = match parts.as_slice() {
            [one] if one.kind == "text" => {
                MessageContent::Text(one.text.clone().unwrap_or_default())
            }
            _ => MessageContent::Parts(parts),
        };
        out.push(ChatMessage {
            role: Some(Role::User),
            content: Some(content),
            ..ChatMessage::default()
        });
    }
    Ok(())
}

/// One model turn as an assistant message.
fn model_turn(
    turn: &Content,
    i: usize,
    pending: &mut Vec<PendingCall>,
    next_call: &mut u32,
    un: &mut Unsupported<'_>,
) -> Result<ChatMessage, BifrostError> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for (j, p) in turn.parts.iter().enumerate() {
        let path = format!("contents[{i}].parts[{j}]");
        if let Some(fc) = &p.function_call {
            let base = fc.id.clone().unwrap_or_else(|| {
                *next_call += 1;
                format!("call_{}", *next_call - 1)
            });
            // Signatures only mean something to Gemini.
            let signature = if un.is_gemini() {
                p.thought_signature.as_deref()
            } else {
                None
            };
            let id = join_tool_call_id(&base, signature);
            let arguments = match &fc.args {
                Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".into()),
                None => "{}".into(),
            };
            pending.push(PendingCall {
                gemini_id: fc.id.clone(),
                id: id.clone(),
                name: fc.name.clone(),
                answered: false,
            });
            calls.push(ToolCall {
                index: None,
                id: Some(id),
                kind: Some("function".into()),
                function: crate::schemas::FunctionCall {
                    name: Some(fc.name.clone()),
                    arguments,
                },
            });
        } else if let Some(t) = &p.text {
            // Thoughts are the model's own output echoed back; only Gemini reads them.
            if p.thought == Some(true) {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        } else {
            un.hit(path)?;
        }
    }
    Ok(ChatMessage {
        role: Some(Role::Assistant),
        content: (!text.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (un.is_gemini() && !reasoning.is_empty()).then_some(reasoning),
        ..ChatMessage::default()
    })
}

/// A part of a user turn as a unified content part (`None`: nothing to say, e.g. a thought).
fn user_part(
    p: &Part,
    path: &str,
    un: &mut Unsupported<'_>,
) -> Result<Option<ContentPart>, BifrostError> {
    for k in p.extra.keys() {
        un.hit(format!("{path}.{k}"))?;
    }
    if p.video_metadata.is_some() {
        un.hit(format!("{path}.videoMetadata"))?;
    }
    if let Some(t) = &p.text {
        return Ok(Some(ContentPart {
            kind: "text".into(),
            text: Some(t.clone()),
            ..ContentPart::default()
        }));
    }
    if let Some(blob) = &p.inline_data {
        let data_uri = format!("data:{};base64,{}", blob.mime_type, blob.data);
        let part = if blob.mime_type.starts_with("image/") {
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: data_uri,
                    detail: None,
                }),
                ..ContentPart::default()
            }
        } else if let Some(format) = blob.mime_type.strip_prefix("audio/") {
            let format = match format {
                "mpeg" | "mp3" => "mp3",
                other => other,
            };
            ContentPart {
                kind: "input_audio".into(),
                input_audio: Some(json!({"data": blob.data, "format": format})),
                ..ContentPart::default()
            }
        } else {
            ContentPart {
                kind: "file".into(),
                file: Some(json!({"file_data": data_uri})),
                ..ContentPart::default()
            }
        };
        return Ok(Some(part));
    }
    if let Some(fd) = &p.file_data {
        let web = fd.file_uri.starts_with("https://") || fd.file_uri.starts_with("http://");
        let image = fd
            .mime_type
            .as_deref()
            .is_none_or(|m| m.starts_with("image/"));
        if !un.is_gemini() && web && image {
            return Ok(Some(ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: fd.file_uri.clone(),
                    detail: None,
                }),
                ..ContentPart::default()
            }));
        }
        if !un.is_gemini() {
            un.hit(format!("{path}.fileData"))?;
            return Ok(None);
        }
        let mut file = json!({"file_id": fd.file_uri});
        if let Some(m) = &fd.mime_type {
            file["mime_type"] = Value::String(m.clone());
        }
        return Ok(Some(ContentPart {
            kind: "file".into(),
            file: Some(file),
            ..ContentPart::default()
        }));
    }
    if p.thought == Some(true) || p.thought_signature.is_some() {
        return Ok(None);
    }
    un.hit(path.to_owned())?;
    Ok(None)
}

/// `generationConfig` as unified parameters. For Gemini targets only the fields with a 1:1
/// unified twin are filled (the verbatim config is what is sent).
fn generation_to_params(
    gc: &GenerationConfig,
    p: &mut ModelParameters,
    un: &mut Unsupported<'_>,
    target: Target<'_>,
) -> Result<(), BifrostError> {
    p.temperature = gc.temperature;
    p.top_p = gc.top_p;
    p.max_completion_tokens = gc.max_output_tokens;
    p.stop = gc
        .stop_sequences
        .as_ref()
        .map(|s| Value::Array(s.iter().cloned().map(Value::String).collect()));
    p.n = gc.candidate_count;
    p.seed = gc.seed;
    p.presence_penalty = gc.presence_penalty;
    p.frequency_penalty = gc.frequency_penalty;
    p.logprobs = gc.response_logprobs;
    p.top_logprobs = gc.logprobs;
    let Target::Other(provider) = target else {
        // Gemini-only settings ride in an extra `generationConfig`, which the Gemini
        // provider merges into the config it derives from the unified fields above.
        if let Value::Object(mut rest) = to_value(gc)? {
            for unified in [
                "temperature",
                "topP",
                "maxOutputTokens",
                "stopSequences",
                "candidateCount",
                "seed",
                "presencePenalty",
                "frequencyPenalty",
                "responseLogprobs",
                "logprobs",
            ] {
                rest.remove(unified);
            }
            if !rest.is_empty() {
                p.extra
                    .insert("generationConfig".into(), Value::Object(rest));
            }
        }
        return Ok(());
    };
    if let Some(k) = gc.top_k {
        if matches!(provider, ProviderKey::Anthropic | ProviderKey::OpenRouter) {
            p.extra.insert("top_k".into(), json!(k));
        } else {
            un.hit("generationConfig.topK")?;
        }
    }
    let schema = match (&gc.response_json_schema, &gc.response_schema) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => Some(google_schema_to_json(s)),
        (None, None) => None,
    };
    match gc.response_mime_type.as_deref() {
        None | Some("text/plain") if schema.is_none() => {}
        None | Some("application/json") => {
            p.response_format = Some(match schema {
                Some(schema) => json!({"type": "json_schema",
                    "json_schema": {"name": "response", "schema": schema}}),
                None => json!({"type": "json_object"}),
            });
        }
        Some(_) => un.hit("generationConfig.responseMimeType")?,
    }
    if let Some(m) = &gc.response_modalities
        && m.iter().any(|m| !m.eq_ignore_ascii_case("TEXT"))
    {
        un.hit("generationConfig.responseModalities")?;
    }
    if let Some(tc) = &gc.thinking_config {
        // `includeThoughts` is honoured where the provider returns reasoning (thought parts).
        let effort = match (&tc.thinking_level, tc.thinking_budget) {
            (Some(level), _) => Some(level.to_ascii_lowercase()),
            (None, Some(0)) => Some("none".to_owned()),
            (None, Some(b)) if b > 0 && b <= 1024 => Some("low".to_owned()),
            (None, Some(b)) if b > 1024 && b <= 8192 => Some("medium".to_owned()),
            (None, Some(b)) if b > 8192 => Some("high".to_owned()),
            // `-1` (dynamic) is the provider's default.
            _ => None,
        };
        if let Some(effort) = effort {
            p.extra
                .insert("reasoning_effort".into(), Value::String(effort));
        }
        for k in tc.extra.keys() {
            un.hit(format!("generationConfig.thinkingConfig.{k}"))?;
        }
    }
    for k in gc.extra.keys() {
        un.hit(format!("generationConfig.{k}"))?;
    }
    Ok(())
}

/// Function declarations as unified tools; built-in tools (`googleSearch`, `codeExecution`,
/// …) have no unified form.
fn tools_from_gemini(
    tools: &[super::types::Tool],
    extra: &mut Map<String, Value>,
    un: &mut Unsupported<'_>,
) -> Result<Option<Vec<Tool>>, BifrostError> {
    let mut out = Vec::new();
    let mut built_in = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if !t.extra.is_empty() && un.is_gemini() {
            // Gemini's provider adds an extra `tools` list to the declarations it derives.
            built_in.push(Value::Object(t.extra.clone()));
        }
        for k in t.extra.keys() {
            un.hit(format!("tools[{i}].{k}"))?;
        }
        for (j, d) in t.function_declarations.iter().flatten().enumerate() {
            for k in d.extra.keys() {
                let field = format!("tools[{i}].functionDeclarations[{j}].{k}");
                // What the function returns only informs the model (the SDK declares it for
                // every Python function); other fields (`behavior`) change how it runs.
                match k.as_str() {
                    "response" | "responseJsonSchema" | "response_json_schema" => un.hint(field),
                    _ => un.hit(field)?,
                }
            }
            let parameters = match (&d.parameters_json_schema, &d.parameters) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(s)) => Some(google_schema_to_json(s)),
                (None, None) => None,
            };
            out.push(Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: d.name.clone(),
                    description: d.description.clone(),
                    parameters,
                    strict: None,
                },
            });
        }
    }
    if !built_in.is_empty() {
        extra.insert("tools".into(), Value::Array(built_in));
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Gemini's function-calling mode as OpenAI's `tool_choice`: `AUTO` → `auto`, `NONE` →
/// `none`, `ANY` → `required` (one allowed name: that function; several: `allowed_tools`),
/// `VALIDATED` → `auto` (limited to the allowed names when given).
fn tool_choice_from_gemini(
    fcc: &super::types::FunctionCallingConfig,
) -> Result<Option<Value>, BifrostError> {
    let names = fcc.allowed_function_names.as_deref().unwrap_or_default();
    let allowed = |mode: &str| {
        let tools: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "function", "function": {"name": n}}))
            .collect();
        json!({"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}})
    };
    let mode = fcc.mode.as_deref().unwrap_or("AUTO").to_ascii_uppercase();
    Ok(Some(match (mode.as_str(), names) {
        ("MODE_UNSPECIFIED" | "AUTO", _) => json!("auto"),
        ("NONE", _) => json!("none"),
        ("ANY", []) => json!("required"),
        ("ANY", [one]) => json!({"type": "function", "function": {"name": one}}),
        ("ANY", _) => allowed("required"),
        ("VALIDATED", []) => json!("auto"),
        ("VALIDATED", _) => allowed("auto"),
        (other, _) => {
            return Err(BifrostError::invalid_param(
                "toolConfig.functionCallingConfig.mode",
                format!("unknown function calling mode {other:?}"),
            ));
        }
    }))
}

/// Google's OpenAPI-subset `Schema` as standard JSON Schema: lower-case `type`,
/// `nullable: true` as a `"null"` type, `propertyOrdering` (an ordering hint) left out.
pub fn google_schema_to_json(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) => {
            let mut out = Map::with_capacity(obj.len());
            let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
            for (k, v) in obj {
                match k.as_str() {
                    "nullable" | "propertyOrdering" | "property_ordering" => {}
                    "type" => {
                        if let Some(t) = v.as_str()
                            && t != "TYPE_UNSPECIFIED"
                        {
                            let t = Value::String(t.to_ascii_lowercase());
                            out.insert(k.clone(), if nullable { json!([t, "null"]) } else { t });
                        } else if !v.is_string() {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                    "properties" | "$defs" | "definitions" => {
                        let mapped = match v {
                            Value::Object(props) => Value::Object(
                                props
                                    .iter()
                                    .map(|(name, s)| (name.clone(), google_schema_to_json(s)))
                                    .collect(),
                            ),
                            other => other.clone(),
                        };
                        out.insert(k.clone(), mapped);
                    }
                    "items" | "anyOf" | "any_of" | "oneOf" | "allOf" | "not" => {
                        let key = if k == "any_of" { "anyOf" } else { k.as_str() };
                        out.insert(key.to_owned(), google_schema_to_json(v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(google_schema_to_json).collect()),
        other => other.clone(),
    }
}

/// Converts `embedContent` requests for `target`: one request (`batch_extra` is `None`; its
/// unknown fields are forwarded), or a batch's (`batch_extra` holds the batch body's unknown
/// fields, which are forwarded; unknown fields inside its requests have no unified home). A
/// batch must ask for the same `taskType`, `title` and `outputDimensionality` throughout
/// (the unified request has one set of parameters).
pub fn embed_request_from_gemini(
    requests: &[EmbedContentRequest],
    batch_extra: Option<&Map<String, Value>>,
    target: Target<'_>,
    drop_unsupported: bool,
) -> Result<EmbedTranslation, BifrostError> {
    let mut un = Unsupported::new(target, drop_unsupported);
    let Some(first) = requests.first() else {
        return Err(BifrostError::invalid_param(
            "requests",
            "at least one request is required",
        ));
    };
    let mut texts = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let same = r.task_type == first.task_type
            && r.title == first.title
            && r.output_dimensionality == first.output_dimensionality;
        if !same {
            return Err(BifrostError::invalid_param(
                &format!("requests[{i}]"),
                "every request of a batch must use the same taskType, title and outputDimensionality",
            ));
        }
        let mut parts = Vec::with_capacity(r.content.parts.len());
        for (j, p) in r.content.parts.iter().enumerate() {
            match &p.text {
                Some(t) => parts.push(t.as_str()),
                None => {
                    return Err(BifrostError::invalid_param(
                        &format!("requests[{i}].content.parts[{j}]"),
                        "only text can be embedded",
                    ));
                }
            }
        }
        texts.push(parts.join(" "));
        if batch_extra.is_some() {
            for k in r.extra.keys() {
                un.hit(format!("requests[{i}].{k}"))?;
            }
        }
    }
    let mut params = ModelParameters {
        dimensions: first.output_dimensionality,
        extra: batch_extra.unwrap_or(&first.extra).clone(),
        ..ModelParameters::default()
    };
    for (key, value) in [("taskType", &first.task_type), ("title", &first.title)] {
        if let Some(v) = value {
            if un.is_gemini() {
                params.extra.insert(key.into(), Value::String(v.clone()));
            } else {
                un.hit(key)?;
            }
        }
    }
    let input = match <[String; 1]>::try_from(texts) {
        Ok([one]) => EmbeddingInput::Text(one),
        Err(many) => EmbeddingInput::Texts(many),
    };
    Ok(EmbedTranslation {
        input,
        params,
        dropped: un.dropped,
    })
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// OpenAI's finish reason as Gemini's: `stop`/`tool_calls` → `STOP`, `length` →
/// `MAX_TOKENS`, `content_filter` → `SAFETY`, anything else → `OTHER`.
pub fn finish_reason_to_gemini(reason: &str) -> &'static str {
    match reason {
        "stop" | "tool_calls" | "function_call" | "end_turn" | "stop_sequence" => "STOP",
        "length" | "max_tokens" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "OTHER",
    }
}

/// Unified usage as Gemini's: reasoning tokens become `thoughtsTokenCount` (and leave
/// `candidatesTokenCount`, which Gemini counts without thoughts), cached tokens
/// `cachedContentTokenCount`.
pub fn usage_to_gemini(u: &Usage) -> UsageMetadata {
    let thoughts = u
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens)
        .filter(|t| *t > 0);
    UsageMetadata {
        prompt_token_count: Some(u.prompt_tokens),
        cached_content_token_count: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens),
        candidates_token_count: Some(u.completion_tokens.saturating_sub(thoughts.unwrap_or(0))),
        thoughts_token_count: thoughts,
        total_token_count: Some(u.total_tokens),
        ..UsageMetadata::default()
    }
}

/// OpenAI's `logprobs` (`{"content":[{token, logprob, top_logprobs}]}`) as Gemini's.
fn logprobs_to_gemini(v: &Value) -> Option<LogprobsResult> {
    let content = v.get("content")?.as_array()?;
    let entry = |e: &Value| LogprobCandidate {
        token: e.get("token").and_then(Value::as_str).map(str::to_owned),
        token_id: None,
        log_probability: e.get("logprob").and_then(Value::as_f64),
    };
    Some(LogprobsResult {
        chosen_candidates: content.iter().map(entry).collect(),
        top_candidates: content
            .iter()
            .map(|e| TopCandidates {
                candidates: e
                    .get("top_logprobs")
                    .and_then(Value::as_array)
                    .map(|t| t.iter().map(entry).collect())
                    .unwrap_or_default(),
            })
            .collect(),
        extra: Map::new(),
    })
}

/// True for ids the gateway made up for Gemini calls that had none (`call_<n>`), which are
/// not sent back to a Gemini client (Gemini itself would not have sent them).
fn synthetic_id(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One unified tool call as a whole `functionCall` part (arguments parsed, signature
/// restored).
fn call_part(
    id: Option<&str>,
    name: &str,
    arguments: &str,
    same_dialect: bool,
) -> Result<Part, BifrostError> {
    let args = if arguments.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(Value::Object(obj)) => obj,
            _ => {
                return Err(BifrostError::bad_upstream_response(format!(
                    "the model called {name} with arguments that are not a JSON object"
                )));
            }
        }
    };
    let (base, signature) = match id {
        Some(id) => {
            let (base, sig) = split_tool_call_id(id);
            (Some(base), sig)
        }
        None => (None, None),
    };
    let id = base
        .filter(|b| !(b.is_empty() || (same_dialect && synthetic_id(b))))
        .map(str::to_owned);
    Ok(Part {
        function_call: Some(FunctionCall {
            id,
            name: name.to_owned(),
            args: Some(args),
        }),
        thought_signature: signature.map(str::to_owned),
        ..Part::default()
    })
}

/// A unified chat response as a `generateContent` answer (one candidate per choice).
/// `same_dialect`: the answer came from a Gemini-based provider.
pub fn chat_response_to_gemini(
    resp: &BifrostResponse,
    same_dialect: bool,
) -> Result<GenerateContentResponse, BifrostError> {
    let mut candidates = Vec::new();
    for c in resp.choices.iter().flatten() {
        let msg = c.message.as_ref().or(c.delta.as_ref());
        let mut parts = Vec::new();
        if let Some(r) = msg
            .and_then(|m| m.reasoning_content.as_deref())
            .filter(|r| !r.is_empty())
        {
            parts.push(Part {
                text: Some(r.to_owned()),
                thought: Some(true),
                ..Part::default()
            });
        }
        let text = msg.and_then(ChatMessage::text_content).or(c.text.clone());
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            parts.push(Part::text(t));
        }
        for tc in msg
            .and_then(|m| m.tool_calls.as_deref())
            .unwrap_or_default()
        {
            let name = tc.function.name.as_deref().unwrap_or_default();
            parts.push(call_part(
                tc.id.as_deref(),
                name,
                &tc.function.arguments,
                same_dialect,
            )?);
        }
        candidates.push(Candidate {
            content: Some(Content {
                parts,
                role: Some(ROLE_MODEL.into()),
            }),
            finish_reason: Some(
                finish_reason_to_gemini(c.finish_reason.as_deref().unwrap_or("stop")).into(),
            ),
            index: Some(c.index),
            logprobs_result: c.logprobs.as_ref().and_then(logprobs_to_gemini),
            ..Candidate::default()
        });
    }
    Ok(GenerateContentResponse {
        candidates,
        usage_metadata: resp.usage.as_ref().map(usage_to_gemini),
        model_version: (!resp.model.is_empty()).then(|| resp.model.clone()),
        response_id: (!resp.id.is_empty()).then(|| resp.id.clone()),
        ..GenerateContentResponse::default()
    })
}

/// A tool call being reassembled from stream deltas.
#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Per-candidate stream state.
#[derive(Debug, Default)]
struct StreamCandidate {
    /// Calls by their delta `index`, in order.
    calls: BTreeMap<u32, PartialCall>,
    finished: bool,
}

/// Turns unified `chat.completion.chunk`s into `streamGenerateContent` events.
///
/// Text and thought deltas are sent at once; tool-call deltas are collected and sent as whole
/// `functionCall` parts with the candidate's finish reason, since Gemini never splits a
/// call. The finishing event is held back until the stream ends so a usage chunk that follows
/// it (OpenAI's `include_usage` shape) lands on it as `usageMetadata`.
#[derive(Debug)]
pub struct GeminiEventStream {
    same_dialect: bool,
    id: String,
    model: String,
    candidates: BTreeMap<u32, StreamCandidate>,
    held: Option<GenerateContentResponse>,
    usage: Option<UsageMetadata>,
}

impl GeminiEventStream {
    /// A converter for one stream; `same_dialect`: the chunks come from a Gemini-based
    /// provider.
    pub fn new(same_dialect: bool) -> Self {
        Self {
            same_dialect,
            id: String::new(),
            model: String::new(),
            candidates: BTreeMap::new(),
            held: None,
            usage: None,
        }
    }

    fn event(&self, candidates: Vec<Candidate>) -> GenerateContentResponse {
        GenerateContentResponse {
            candidates,
            model_version: (!self.model.is_empty()).then(|| self.model.clone()),
            response_id: (!self.id.is_empty()).then(|| self.id.clone()),
            ..GenerateContentResponse::default()
        }
    }

    /// The events for one chunk (often one, none for a chunk that only carries a tool-call
    /// fragment or usage). Fails on a tool call whose reassembled arguments are not a JSON
    /// object.
    pub fn push(
        &mut self,
        chunk: &BifrostResponse,
    ) -> Result<Vec<GenerateContentResponse>, BifrostError> {
        if self.id.is_empty() && !chunk.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        if !chunk.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(usage_to_gemini(u));
        }
        let mut out = Vec::new();
        for c in chunk.choices.iter().flatten() {
            let state = self.candidates.entry(c.index).or_default();
            let mut parts = Vec::new();
            if let Some(d) = &c.delta {
                if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                    parts.push(Part {
                        text: Some(r.to_owned()),
                        thought: Some(true),
                        ..Part::default()
                    });
                }
                if let Some(t) = d.text_content().filter(|t| !t.is_empty()) {
                    parts.push(Part::text(t));
                }
                for (pos, tc) in d.tool_calls.iter().flatten().enumerate() {
                    let index = tc
                        .index
                        .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
                    let call = state.calls.entry(index).or_default();
                    if let Some(id) = tc.id.as_deref().filter(|id| !id.is_empty()) {
                        call.id = Some(id.to_owned());
                    }
                    if let Some(name) = tc.function.name.as_deref()
                        && call.name.is_empty()
                    {
                        call.name = name.to_owned();
                    }
                    call.arguments.push_str(&tc.function.arguments);
                }
            }
            if let Some(t) = c.text.as_deref().filter(|t| !t.is_empty()) {
                parts.push(Part::text(t));
            }
            let finish = c.finish_reason.as_deref();
            if finish.is_some() {
                state.finished = true;
                for call in std::mem::take(&mut state.calls).into_values() {
                    parts.push(call_part(
                        call.id.as_deref(),
                        &call.name,
                        &call.arguments,
                        self.same_dialect,
                    )?);
                }
            }
            if parts.is_empty() && finish.is_none() {
                continue;
            }
            let candidate = Candidate {
                content: Some(Content {
                    parts,
                    role: Some(ROLE_MODEL.into()),
                }),
                finish_reason: finish.map(|f| finish_reason_to_gemini(f).to_owned()),
                index: Some(c.index),
                logprobs_result: c.logprobs.as_ref().and_then(logprobs_to_gemini),
                ..Candidate::default()
            };
            let ev = self.event(vec![candidate]);
            if finish.is_some() {
                if let Some(prev) = self.held.replace(ev) {
                    out.push(prev);
                }
            } else {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// The events left at the end of a stream that ended well: tool calls of candidates that
    /// never sent a finish reason, then the held finishing event with the usage.
    pub fn finish(&mut self) -> Result<Vec<GenerateContentResponse>, BifrostError> {
        let mut out = Vec::new();
        let unfinished: Vec<(u32, StreamCandidate)> = std::mem::take(&mut self.candidates)
            .into_iter()
            .filter(|(_, c)| !c.finished && !c.calls.is_empty())
            .collect();
        for (index, c) in unfinished {
            let mut parts = Vec::with_capacity(c.calls.len());
            for call in c.calls.into_values() {
                parts.push(call_part(
                    call.id.as_deref(),
                    &call.name,
                    &call.arguments,
                    self.same_dialect,
                )?);
            }
            let candidate = Candidate {
                content: Some(Content {
                    parts,
                    role: Some(ROLE_MODEL.into()),
                }),
                finish_reason: Some("STOP".into()),
                index: Some(index),
                ..Candidate::default()
            };
            if let Some(prev) = self.held.replace(self.event(vec![candidate])) {
                out.push(prev);
            }
        }
        let usage = self.usage.take();
        match self.held.take() {
            Some(mut last) => {
                last.usage_metadata = usage;
                out.push(last);
            }
            None if usage.is_some() => {
                let mut ev = self.event(Vec::new());
                ev.usage_metadata = usage;
                out.push(ev);
            }
            None => {}
        }
        Ok(out)
    }
}

/// Unified embeddings as Gemini vectors, in input order. Only float vectors are expected
/// (the route never asks for base64).
pub fn embeddings_to_gemini(resp: &BifrostResponse) -> Result<Vec<ContentEmbedding>, BifrostError> {
    let mut data: Vec<_> = resp.data.iter().flatten().collect();
    data.sort_by_key(|d| d.index);
    data.into_iter()
        .map(|d| {
            serde_json::from_value::<Vec<f64>>(d.embedding.clone())
                .map(|values| ContentEmbedding { values })
                .map_err(|e| {
                    BifrostError::bad_upstream_response(format!(
                        "embedding {} is not a list of numbers: {e}",
                        d.index
                    ))
                })
        })
        .collect()
}

/// Methods every listed model is offered with (the gateway cannot tell which a model has).
const LISTED_METHODS: [&str; 4] = [
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
];

/// The gateway's model list (`provider/model` ids) as Gemini's: `models/<provider>/<model>`,
/// a name the SDK can send back as is.
pub fn model_list_to_gemini(list: &ModelList) -> ListModelsResponse {
    ListModelsResponse {
        models: list.data.iter().map(|m| model_to_gemini(&m.id)).collect(),
        next_page_token: None,
    }
}

/// One model id as a Gemini `Model`.
pub fn model_to_gemini(id: &str) -> Model {
    Model {
        name: format!("models/{id}"),
        display_name: Some(id.to_owned()),
        supported_generation_methods: Some(LISTED_METHODS.map(str::to_owned).to_vec()),
        extra: Map::new(),
    }
}

/// A token estimate for `:countTokens` when the provider cannot count: about four characters
/// per token over every text, function call and declaration, rounded up per part. Callers
/// get an estimate rather than an error because the SDK's `count_tokens` is mostly used for
/// budgeting.
pub fn estimate_tokens(req: &CountTokensRequest) -> u64 {
    let estimate = |s: &str| u64::try_from(s.chars().count().div_ceil(4)).unwrap_or(u64::MAX);
    let mut total = 0u64;
    let mut count_contents = |contents: &[Content]| {
        for c in contents {
            for p in &c.parts {
                if let Some(t) = &p.text {
                    total += estimate(t);
                }
                if let Some(fc) = &p.function_call {
                    total += estimate(&fc.name)
                        + fc.args
                            .as_ref()
                            .map_or(0, |a| estimate(&Value::Object(a.clone()).to_string()));
                }
                if let Some(fr) = &p.function_response {
                    total += estimate(&fr.name)
                        + estimate(&Value::Object(fr.response.clone()).to_string());
                }
                if p.inline_data.is_some() || p.file_data.is_some() {
                    // Gemini's flat rate for an image (258 tokens).
                    total += 258;
                }
            }
        }
    };
    if let Some(c) = &req.contents {
        count_contents(c);
    }
    if let Some(g) = &req.generate_content_request {
        count_contents(&g.contents);
        if let Some(s) = &g.system_instruction {
            count_contents(std::slice::from_ref(s));
        }
        if let Some(tools) = &g.tools {
            total += estimate(&serde_json::to_string(tools).unwrap_or_default());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{
        Choice, CompletionTokensDetails, EmbeddingData, ModelInfo, PromptTokensDetails,
    };

    const OPENAI: Target<'static> = Target::Other(&ProviderKey::OpenAI);

    fn gemini_req(v: Value) -> GenerateContentRequest {
        serde_json::from_value(v).unwrap()
    }

    fn to_openai(v: Value) -> Result<ChatTranslation, BifrostError> {
        chat_request_from_gemini(&gemini_req(v), OPENAI, false)
    }

    fn messages_json(t: &ChatTranslation) -> Value {
        serde_json::to_value(&t.messages).unwrap()
    }

    /// (name, Gemini body, expected unified messages, expected params subset).
    #[test]
    fn requests_translate_for_other_providers() {
        let weather = json!({"functionDeclarations": [{"name": "get_weather", "description": "d",
            "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING", "nullable": true}},
                           "required": ["location"], "propertyOrdering": ["location"]}}]});
        let cases = [
            (
                "system, text and generation config",
                json!({
                    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                    "systemInstruction": {"role": "user", "parts": [{"text": "be"}, {"text": "brief"}]},
                    "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 50,
                        "stopSequences": ["END"], "candidateCount": 2, "seed": 7,
                        "presencePenalty": 0.1, "frequencyPenalty": 0.3,
                        "responseLogprobs": true, "logprobs": 2},
                    "mock": {"status": 500}
                }),
                json!([{"role": "system", "content": "be\nbrief"}, {"role": "user", "content": "hi"}]),
                json!({"temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "stop": ["END"],
                    "n": 2, "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3,
                    "logprobs": true, "top_logprobs": 2, "mock": {"status": 500}}),
            ),
            (
                "tool call round trip links results by name and order",
                json!({
                    "contents": [
                        {"role": "user", "parts": [{"text": "weather?"}]},
                        {"role": "model", "parts": [{"text": "let me see"},
                            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": "sig"},
                            {"functionCall": {"name": "get_weather", "args": {"location": "Rome"}}}]},
                        {"role": "user", "parts": [
                            {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}},
                            {"functionResponse": {"name": "get_weather", "response": {"temp": 25}}},
                            {"text": "thanks"}]}
                    ],
                    "tools": [weather],
                    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
                }),
                json!([
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": "let me see", "tool_calls": [
                        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Rome\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\":20}"},
                    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":25}"},
                    {"role": "user", "content": "thanks"}
                ]),
                json!({
                    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                        "parameters": {"type": "object", "properties": {"location": {"type": ["string", "null"]}},
                                       "required": ["location"]}}}],
                    "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
                }),
            ),
            (
                "ids link results when Gemini sent them",
                json!({"contents": [
                    {"role": "model", "parts": [{"functionCall": {"id": "a", "name": "f", "args": {}}},
                                                {"functionCall": {"id": "b", "name": "f"}}]},
                    {"role": "user", "parts": [{"functionResponse": {"id": "b", "name": "f", "response": {"x": 2}}},
                                               {"functionResponse": {"id": "a", "name": "f", "response": {"x": 1}}}]}
                ]}),
                json!([
                    {"role": "assistant", "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "b", "content": "{\"x\":2}"},
                    {"role": "tool", "tool_call_id": "a", "content": "{\"x\":1}"}
                ]),
                json!({}),
            ),
            (
                "media parts, JSON schema output and thinking",
                json!({
                    "contents": [{"role": "user", "parts": [
                        {"text": "look"},
                        {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
                        {"inline_data": {"mime_type": "audio/mpeg", "data": "BBB"}},
                        {"inlineData": {"mimeType": "application/pdf", "data": "CCC"}},
                        {"fileData": {"fileUri": "https://x/y.png", "mimeType": "image/png"}}]}],
                    "generationConfig": {"responseMimeType": "application/json",
                        "responseSchema": {"type": "ARRAY", "items": {"type": "INTEGER"}},
                        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}}
                }),
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "input_audio", "input_audio": {"data": "BBB", "format": "mp3"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,CCC"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]),
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "response",
                        "schema": {"type": "array", "items": {"type": "integer"}}}},
                    "reasoning_effort": "medium"}),
            ),
        ];
        for (name, body, messages, params) in cases {
            let t = to_openai(body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(messages_json(&t), messages, "{name}: messages");
            assert_eq!(
                serde_json::to_value(&t.params).unwrap(),
                params,
                "{name}: params"
            );
            assert!(t.dropped.is_empty(), "{name}");
        }
        // A Python function declared by the SDK comes with its return schema: a hint only.
        let t = to_openai(json!({"contents": [], "tools": [{"functionDeclarations": [{"name": "f",
            "parameters_json_schema": {"type": "object"}, "response_json_schema": {"type": "string"}}]}]}))
        .unwrap();
        assert_eq!(
            t.params.tools.as_ref().unwrap()[0].function.parameters,
            Some(json!({"type": "object"}))
        );
        assert_eq!(
            t.hints,
            vec!["tools[0].functionDeclarations[0].response_json_schema".to_owned()]
        );
        assert!(to_openai(json!({"tools": [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}]})).is_err());
    }

    #[test]
    fn unsupported_fields_are_named_or_dropped() {
        let cases = [
            (
                json!({"generationConfig": {"topK": 3}}),
                "generationConfig.topK",
            ),
            (
                json!({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}),
                "safetySettings",
            ),
            (
                json!({"cachedContent": "cachedContents/1"}),
                "cachedContent",
            ),
            (
                json!({"tools": [{"googleSearch": {}}]}),
                "tools[0].googleSearch",
            ),
            (
                json!({"generationConfig": {"speechConfig": {}}}),
                "generationConfig.speechConfig",
            ),
            (
                json!({"generationConfig": {"responseModalities": ["IMAGE"]}}),
                "generationConfig.responseModalities",
            ),
            (
                json!({"generationConfig": {"responseMimeType": "text/x.enum"}}),
                "generationConfig.responseMimeType",
            ),
            (
                json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "files/abc", "mimeType": "application/pdf"}}]}]}),
                "contents[0].parts[0].fileData",
            ),
            (
                json!({"contents": [{"role": "model", "parts": [{"executableCode": {"language": "PYTHON", "code": "1"}}]}]}),
                "contents[0].parts[0]",
            ),
            (
                json!({"toolConfig": {"retrievalConfig": {}}}),
                "toolConfig.retrievalConfig",
            ),
        ];
        for (extra, field) in cases {
            let mut body = json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = to_openai(body.clone()).unwrap_err();
            assert_eq!(err.http_status(), 400, "{field}");
            assert_eq!(err.error.param.as_deref(), Some(field));
            assert!(
                err.error.message.contains("provider openai"),
                "{}",
                err.error.message
            );
            let t = chat_request_from_gemini(&gemini_req(body.clone()), OPENAI, true).unwrap();
            assert_eq!(t.dropped, vec![field.to_owned()]);
            // Gemini takes all of them.
            let g = chat_request_from_gemini(&gemini_req(body), Target::Gemini, false).unwrap();
            assert!(g.dropped.is_empty());
        }
        // Anthropic has top_k.
        let t = chat_request_from_gemini(
            &gemini_req(json!({"contents": [], "generationConfig": {"topK": 3}})),
            Target::Other(&ProviderKey::Anthropic),
            false,
        )
        .unwrap();
        assert_eq!(t.params.extra["top_k"], 3);
    }

    #[test]
    fn orphan_function_response_is_a_400() {
        let err = to_openai(json!({"contents": [
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}))
        .unwrap_err();
        assert_eq!(
            err.error.param.as_deref(),
            Some("contents[0].parts[0].functionResponse")
        );
    }

    #[test]
    fn tool_config_modes() {
        let cases = [
            (json!({"mode": "AUTO"}), json!("auto")),
            (json!({"mode": "NONE"}), json!("none")),
            (json!({"mode": "ANY"}), json!("required")),
            (
                json!({"mode": "ANY", "allowedFunctionNames": ["a", "b"]}),
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
                 {"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]}}),
            ),
            (json!({"mode": "VALIDATED"}), json!("auto")),
        ];
        for (fcc, expected) in cases {
            let t =
                to_openai(json!({"contents": [], "toolConfig": {"functionCallingConfig": fcc}}))
                    .unwrap();
            assert_eq!(t.params.tool_choice, Some(expected));
        }
        assert!(
            to_openai(json!({"toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}))
                .is_err()
        );
    }

    #[test]
    fn gemini_target_keeps_gemini_only_settings_for_the_provider() {
        let body = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}, {"fileData": {"fileUri": "files/a", "mimeType": "application/pdf"}}]},
                {"role": "model", "parts": [{"text": "hmm", "thought": true},
                    {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "sig"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": true}}}]}
            ],
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}, {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"temperature": 0.5, "topK": 3, "responseSchema": {"type": "OBJECT"},
                "responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0},
                "mediaResolution": "MEDIA_RESOLUTION_LOW"},
            "cachedContent": "cachedContents/x",
            "labels": {"a": "b"}
        });
        let t = chat_request_from_gemini(&gemini_req(body), Target::Gemini, false).unwrap();
        assert!(t.dropped.is_empty());
        assert_eq!(t.messages[0].text_content().as_deref(), Some("sys"));
        assert_eq!(
            t.messages[2].tool_calls.as_ref().unwrap()[0].id.as_deref(),
            Some("call_0__thought__sig")
        );
        assert_eq!(t.params.temperature, Some(0.5));
        // What the Gemini provider makes of the translation (the path taken when a plugin
        // rewrote the request, so the original body is not sent).
        let sent = crate::providers::gemini::convert::chat_request(
            "gemini-2.0-flash",
            &t.messages,
            &t.params,
        )
        .unwrap();
        let v = serde_json::to_value(&sent).unwrap();
        assert_eq!(
            v["contents"],
            json!([
                {"role": "user", "parts": [{"text": "hi"}, {"fileData": {"fileUri": "files/a", "mimeType": "application/pdf"}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "sig"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": true}}}]}
            ])
        );
        assert_eq!(v["systemInstruction"], json!({"parts": [{"text": "sys"}]}));
        assert_eq!(
            v["generationConfig"],
            json!({"temperature": 0.5, "topK": 3, "responseSchema": {"type": "OBJECT"},
                "responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0},
                "mediaResolution": "MEDIA_RESOLUTION_LOW"})
        );
        assert_eq!(
            v["tools"],
            json!([{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]},
                   {"googleSearch": {}}])
        );
        assert_eq!(
            v["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        assert_eq!(v["safetySettings"][0]["threshold"], "BLOCK_NONE");
        assert_eq!(v["cachedContent"], "cachedContents/x");
        assert_eq!(v["labels"], json!({"a": "b"}));
    }

    fn chat_resp(v: Value) -> BifrostResponse {
        serde_json::from_value(v).unwrap()
    }

    /// (name, unified response, same dialect, expected Gemini answer).
    #[test]
    fn responses_translate_to_gemini() {
        let cases = [
            (
                "text with usage, cached and reasoning tokens",
                json!({"id": "r1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "finish_reason": "length",
                        "message": {"role": "assistant", "content": "hello", "reasoning_content": "think"}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                        "prompt_tokens_details": {"cached_tokens": 4},
                        "completion_tokens_details": {"reasoning_tokens": 3}}}),
                false,
                json!({"candidates": [{"content": {"role": "model", "parts": [
                        {"text": "think", "thought": true}, {"text": "hello"}]},
                        "finishReason": "MAX_TOKENS", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 4,
                        "candidatesTokenCount": 4, "thoughtsTokenCount": 3, "totalTokenCount": 17},
                    "modelVersion": "gpt-4o-mini", "responseId": "r1"}),
            ),
            (
                "tool calls keep other providers' ids and restore signatures",
                json!({"id": "r2", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "tool_calls": [
                        {"id": "call_abc", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                        {"id": "x__thought__c2ln", "type": "function", "function": {"name": "g", "arguments": ""}}]}}]}),
                false,
                json!({"candidates": [{"content": {"role": "model", "parts": [
                        {"functionCall": {"id": "call_abc", "name": "f", "args": {"a": 1}}},
                        {"functionCall": {"id": "x", "name": "g", "args": {}}, "thoughtSignature": "c2ln"}]},
                        "finishReason": "STOP", "index": 0}],
                    "modelVersion": "m", "responseId": "r2"}),
            ),
            (
                "same dialect drops the ids the gateway made up",
                json!({"model": "gemini-2.0-flash", "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "tool_calls": [
                        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}),
                true,
                json!({"candidates": [{"content": {"role": "model", "parts": [
                        {"functionCall": {"name": "f", "args": {}}}]},
                        "finishReason": "STOP", "index": 0}],
                    "modelVersion": "gemini-2.0-flash"}),
            ),
            (
                "content filter and logprobs",
                json!({"model": "m", "choices": [{"index": 0, "finish_reason": "content_filter",
                    "message": {"role": "assistant", "content": "x"},
                    "logprobs": {"content": [{"token": "x", "logprob": -0.5,
                        "top_logprobs": [{"token": "x", "logprob": -0.5}, {"token": "y", "logprob": -1.0}]}]}}]}),
                false,
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
                        "finishReason": "SAFETY", "index": 0,
                        "logprobsResult": {"chosenCandidates": [{"token": "x", "logProbability": -0.5}],
                            "topCandidates": [{"candidates": [{"token": "x", "logProbability": -0.5},
                                                              {"token": "y", "logProbability": -1.0}]}]}}],
                    "modelVersion": "m"}),
            ),
        ];
        for (name, resp, same, expected) in cases {
            let g = chat_response_to_gemini(&chat_resp(resp), same).unwrap();
            assert_eq!(serde_json::to_value(&g).unwrap(), expected, "{name}");
        }
        let bad = chat_resp(
            json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}}]}),
        );
        assert_eq!(
            chat_response_to_gemini(&bad, false)
                .unwrap_err()
                .http_status(),
            502
        );
    }

    #[test]
    fn finish_reasons() {
        for (openai, gemini) in [
            ("stop", "STOP"),
            ("tool_calls", "STOP"),
            ("length", "MAX_TOKENS"),
            ("content_filter", "SAFETY"),
            ("weird", "OTHER"),
        ] {
            assert_eq!(finish_reason_to_gemini(openai), gemini);
        }
    }

    fn chunk(v: Value) -> BifrostResponse {
        let mut base =
            json!({"id": "s1", "object": "chat.completion.chunk", "created": 1, "model": "m"});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn delta(d: Value, finish: Option<&str>) -> BifrostResponse {
        chunk(json!({"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}))
    }

    fn run_stream(chunks: &[BifrostResponse], same: bool) -> Vec<Value> {
        let mut s = GeminiEventStream::new(same);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c).unwrap());
        }
        out.extend(s.finish().unwrap());
        out.iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }

    #[test]
    fn stream_text_then_finish_with_trailing_usage() {
        let events = run_stream(
            &[
                delta(json!({"role": "assistant", "content": ""}), None),
                delta(json!({"content": "Hel"}), None),
                delta(json!({"reasoning_content": "hmm", "content": "lo"}), None),
                delta(json!({}), Some("stop")),
                chunk(
                    json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
                ),
            ],
            false,
        );
        let head = json!({"modelVersion": "m", "responseId": "s1"});
        let ev = |cand: Value| {
            let mut e = head.clone();
            e["candidates"] = json!([cand]);
            e
        };
        let mut last = ev(
            json!({"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}),
        );
        last["usageMetadata"] =
            json!({"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5});
        assert_eq!(
            events,
            vec![
                ev(json!({"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0})),
                ev(
                    json!({"content": {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"text": "lo"}]}, "index": 0})
                ),
                last,
            ]
        );
    }

    #[test]
    fn stream_tool_call_deltas_reassemble_into_one_function_call() {
        let args = r#"{"location": "Paris", "unit": "celsius"}"#;
        let mut chunks = vec![delta(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_x", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        )];
        // One character per delta, interleaved with a second call.
        for (i, ch) in args.chars().enumerate() {
            chunks.push(delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": ch.to_string()}}]}),
                None,
            ));
            if i == 3 {
                chunks.push(delta(
                    json!({"tool_calls": [{"index": 1, "id": "call_y", "function": {"name": "now", "arguments": "{}"}}]}),
                    None,
                ));
            }
        }
        chunks.push(chunk(
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        ));
        let events = run_stream(&chunks, false);
        assert_eq!(events.len(), 1, "{events:#?}");
        let cand = &events[0]["candidates"][0];
        assert_eq!(cand["finishReason"], "STOP");
        assert_eq!(
            cand["content"]["parts"],
            json!([
                {"functionCall": {"id": "call_x", "name": "get_weather", "args": {"location": "Paris", "unit": "celsius"}}},
                {"functionCall": {"id": "call_y", "name": "now", "args": {}}}
            ])
        );
        assert_eq!(events[0]["usageMetadata"]["totalTokenCount"], 2);
    }

    #[test]
    fn stream_calls_without_finish_are_flushed_and_bad_arguments_fail() {
        let events = run_stream(
            &[delta(
                json!({"tool_calls": [{"index": 0, "id": "call_3", "function": {"name": "f", "arguments": "{}"}}]}),
                None,
            )],
            true,
        );
        assert_eq!(
            events,
            vec![
                json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                "finishReason": "STOP", "index": 0}], "modelVersion": "m", "responseId": "s1"})
            ]
        );
        let mut s = GeminiEventStream::new(false);
        s.push(&delta(
            json!({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{\"a\""}}]}),
            None,
        ))
        .unwrap();
        assert!(s.push(&delta(json!({}), Some("tool_calls"))).is_err());
        // Usage with no finishing event still reaches the client.
        let events = run_stream(
            &[chunk(
                json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}}),
            )],
            false,
        );
        assert_eq!(events[0]["usageMetadata"]["promptTokenCount"], 1);
    }

    #[test]
    fn two_candidates_stream_separately() {
        let events = run_stream(
            &[
                chunk(
                    json!({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": null},
                                         {"index": 1, "delta": {"content": "b"}, "finish_reason": null}]}),
                ),
                chunk(
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"},
                                         {"index": 1, "delta": {}, "finish_reason": "length"}]}),
                ),
            ],
            false,
        );
        let idx: Vec<(Value, Value)> = events
            .iter()
            .map(|e| {
                (
                    e["candidates"][0]["index"].clone(),
                    e["candidates"][0]["finishReason"].clone(),
                )
            })
            .collect();
        assert_eq!(
            idx,
            vec![
                (json!(0), Value::Null),
                (json!(1), Value::Null),
                (json!(0), json!("STOP")),
                (json!(1), json!("MAX_TOKENS"))
            ]
        );
    }

    #[test]
    fn embeddings_both_ways() {
        let reqs: Vec<EmbedContentRequest> = serde_json::from_value(json!([
            {"model": "models/e", "content": {"parts": [{"text": "a"}, {"text": "b"}]}, "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 4},
            {"model": "models/e", "content": {"parts": [{"text": "c"}]}, "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 4}
        ]))
        .unwrap();
        let g = embed_request_from_gemini(&reqs, Some(&Map::new()), Target::Gemini, false).unwrap();
        assert_eq!(
            g.input,
            EmbeddingInput::Texts(vec!["a b".into(), "c".into()])
        );
        assert_eq!(g.params.dimensions, Some(4));
        assert_eq!(g.params.extra["taskType"], "RETRIEVAL_QUERY");
        let err = embed_request_from_gemini(&reqs, Some(&Map::new()), OPENAI, false).unwrap_err();
        assert_eq!(err.error.param.as_deref(), Some("taskType"));
        let mut single = reqs[1].clone();
        single.extra.insert("mock".into(), json!({"status": 429}));
        let one = embed_request_from_gemini(&[single.clone()], None, OPENAI, true).unwrap();
        assert_eq!(one.input, EmbeddingInput::Text("c".into()));
        assert_eq!(one.dropped, vec!["taskType".to_owned()]);
        assert_eq!(
            one.params.extra["mock"],
            json!({"status": 429}),
            "unknown fields are forwarded"
        );
        let err = embed_request_from_gemini(&[single], Some(&Map::new()), Target::Gemini, false);
        assert!(err.is_ok(), "Gemini takes unknown batch entry fields");
        let mut mixed = reqs.clone();
        mixed[1].task_type = None;
        assert!(embed_request_from_gemini(&mixed, None, Target::Gemini, false).is_err());
        assert!(embed_request_from_gemini(&[], None, Target::Gemini, false).is_err());

        let resp = BifrostResponse {
            data: Some(vec![
                EmbeddingData {
                    index: 1,
                    object: "embedding".into(),
                    embedding: json!([0.5]),
                },
                EmbeddingData {
                    index: 0,
                    object: "embedding".into(),
                    embedding: json!([0.25, 1.0]),
                },
            ]),
            ..BifrostResponse::default()
        };
        let v = embeddings_to_gemini(&resp).unwrap();
        assert_eq!(v[0].values, vec![0.25, 1.0]);
        assert_eq!(v[1].values, vec![0.5]);
        let b64 = BifrostResponse {
            data: Some(vec![EmbeddingData {
                index: 0,
                object: String::new(),
                embedding: json!("AAAA"),
            }]),
            ..BifrostResponse::default()
        };
        assert_eq!(embeddings_to_gemini(&b64).unwrap_err().http_status(), 502);
    }

    #[test]
    fn usage_without_details_and_models_and_estimates() {
        let u = usage_to_gemini(&Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            total_tokens: 8,
            prompt_tokens_details: Some(PromptTokensDetails::default()),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(0),
                ..CompletionTokensDetails::default()
            }),
        });
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8})
        );
        let list = ModelList {
            object: "list".into(),
            data: vec![ModelInfo {
                id: "openai/gpt-4o-mini".into(),
                ..ModelInfo::default()
            }],
        };
        let g = model_list_to_gemini(&list);
        assert_eq!(g.models[0].name, "models/openai/gpt-4o-mini");
        let req: CountTokensRequest = serde_json::from_value(json!({"contents": [
            {"role": "user", "parts": [{"text": "12345678"}, {"inlineData": {"mimeType": "image/png", "data": "A"}}]}]}))
        .unwrap();
        assert_eq!(estimate_tokens(&req), 2 + 258);
        let req: CountTokensRequest = serde_json::from_value(json!({"generateContentRequest": {
            "contents": [{"parts": [{"text": "abcd"}]}], "systemInstruction": {"parts": [{"text": "abcd"}]}}}))
        .unwrap();
        assert_eq!(estimate_tokens(&req), 2);
        let _ = Choice::default();
    }

    #[test]
    fn google_schemas_become_json_schema() {
        let s = json!({"type": "OBJECT", "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a"]}},
            "n": {"anyOf": [{"type": "INTEGER"}, {"type": "NUMBER", "nullable": true}]}},
            "propertyOrdering": ["tags", "n"], "required": ["tags"]});
        assert_eq!(
            google_schema_to_json(&s),
            json!({"type": "object", "properties": {
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
                "n": {"anyOf": [{"type": "integer"}, {"type": ["number", "null"]}]}},
                "required": ["tags"]})
        );
    }
}
