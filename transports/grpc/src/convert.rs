//! `bifrost.v1` messages ↔ the engine's unified types, in both directions and losslessly.
//!
//! Requests go proto → core on the server (invalid input is a
//! [`BifrostError::invalid_param`] naming the field, which the service answers as
//! `INVALID_ARGUMENT`; nothing here panics), answers go core → proto. The reverse
//! directions exist too, for Rust clients and for the round-trip tests that prove nothing
//! the HTTP API carries is lost on the way.
//!
//! Free-form JSON travels as `google.protobuf.Value`/`Struct`. Their numbers are doubles, so
//! a whole number comes back as a JSON integer (`top_k: 40` stays `40`, never `40.0`, which
//! strict upstream parsers reject); integers beyond 2^53 lose precision, as in any
//! protobuf-JSON mapping. An empty list (`tools: []`, `tool_calls: []`) and an absent one
//! are the same on the wire.

use std::time::Duration;

use bifrost_core::providers::TokenCount;
use bifrost_core::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Choice, CompletionTokensDetails,
    ContentPart, EmbeddingData, EmbeddingInput, ErrorBody, ErrorExtraFields, ErrorSource,
    ExtraFields, Fallback, FunctionCall, FunctionDef, ImageUrl, MessageContent, ModelInfo,
    ModelList, ModelParameters, PromptInput, PromptTokensDetails, ProviderKey, RequestInput, Role,
    StreamOptions, Tool, ToolCall, Usage,
};
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use crate::pb;

/// Result of a conversion; the error is already in the unified shape the caller sees.
pub type Result<T> = std::result::Result<T, BifrostError>;

// ---------------------------------------------------------------------------------------
// JSON ↔ google.protobuf.Value / Struct
// ---------------------------------------------------------------------------------------

/// Largest integer a double holds exactly (2^53).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// A JSON value as a `google.protobuf.Value`.
pub fn json_to_value(v: Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        Value::Object(m) => Kind::StructValue(map_to_struct(m)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object as a `google.protobuf.Struct`.
pub fn map_to_struct(m: Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: m.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
    }
}

/// A `google.protobuf.Value` as JSON; `field` names it in the error for a non-finite number.
pub fn value_to_json(v: prost_types::Value, field: &str) -> Result<Value> {
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => number(n, field)?,
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(
            l.values
                .into_iter()
                .map(|v| value_to_json(v, field))
                .collect::<Result<_>>()?,
        ),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_map(s, field)?),
    })
}

/// A `google.protobuf.Struct` as a JSON object.
pub fn struct_to_map(s: prost_types::Struct, field: &str) -> Result<Map<String, Value>> {
    s.fields
        .into_iter()
        .map(|(k, v)| Ok((k, value_to_json(v, field)?)))
        .collect()
}

/// A double as a JSON number: whole numbers as integers (what the caller most likely
/// wrote), the rest as floats; NaN and infinities have no JSON form.
fn number(n: f64, field: &str) -> Result<Value> {
    if n.fract() == 0.0 && n.abs() < MAX_EXACT {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "whole and below 2^53, so exact"
        )]
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n).map(Value::Number).ok_or_else(|| {
        BifrostError::invalid_param(field, format!("{field}: {n} is not a JSON number"))
    })
}

fn opt_struct(v: Option<prost_types::Struct>, field: &str) -> Result<Option<Value>> {
    v.map(|s| struct_to_map(s, field).map(Value::Object))
        .transpose()
}

fn opt_value(v: Option<prost_types::Value>, field: &str) -> Result<Option<Value>> {
    v.map(|v| value_to_json(v, field)).transpose()
}

fn extra_map(v: Option<prost_types::Struct>, field: &str) -> Result<Map<String, Value>> {
    v.map_or_else(|| Ok(Map::new()), |s| struct_to_map(s, field))
}

fn extra_struct(m: Map<String, Value>) -> Option<prost_types::Struct> {
    (!m.is_empty()).then(|| map_to_struct(m))
}

/// An object-valued JSON field as a `Struct`; anything but an object is an error naming
/// the field (the proto types it as an object).
fn object_struct(v: Option<Value>, field: &str) -> Result<Option<prost_types::Struct>> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(map_to_struct(m))),
        Some(other) => Err(BifrostError::invalid_param(
            field,
            format!("{field} must be a JSON object, got {other}"),
        )),
    }
}

fn nonempty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

// ---------------------------------------------------------------------------------------
// Requests: proto → core
// ---------------------------------------------------------------------------------------

/// The fields every inference request shares, before the operation's input is added.
struct Target {
    provider: ProviderKey,
    model: String,
}

/// `provider/model`, or a bare model with `provider` set (Bifrost v1.0's form); the same
/// rules and messages as the HTTP API.
fn target(model: String, provider: Option<String>) -> Result<Target> {
    if model.is_empty() {
        return Err(BifrostError::invalid_param("model", "model is required"));
    }
    if let Some(p) = provider.filter(|p| !p.is_empty()) {
        return Ok(Target {
            provider: ProviderKey::parse(&p),
            model,
        });
    }
    match model.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Target {
            provider: ProviderKey::parse(p),
            model: m.to_owned(),
        }),
        _ => Err(BifrostError::invalid_param(
            "model",
            format!(
                "model must be in the format 'provider/model' (e.g. openai/gpt-4o-mini), got {model:?}"
            ),
        )),
    }
}

fn fallbacks_from(f: Vec<pb::Fallback>) -> Result<Vec<Fallback>> {
    f.into_iter()
        .enumerate()
        .map(|(i, f)| {
            if f.provider.is_empty() || f.model.is_empty() {
                return Err(BifrostError::invalid_param(
                    "fallbacks",
                    format!("fallbacks[{i}] needs both provider and model"),
                ));
            }
            Ok(Fallback {
                provider: ProviderKey::parse(&f.provider),
                model: f.model,
            })
        })
        .collect()
}

fn build(
    model: String,
    provider: Option<String>,
    input: RequestInput,
    params: Option<pb::ModelParameters>,
    fallbacks: Vec<pb::Fallback>,
) -> Result<BifrostRequest> {
    let t = target(model, provider)?;
    Ok(BifrostRequest {
        provider: t.provider,
        model: t.model,
        input,
        params: params.map(params_from).transpose()?.unwrap_or_default(),
        fallbacks: fallbacks_from(fallbacks)?,
    })
}

fn messages_from(m: Vec<pb::ChatMessage>) -> Result<Vec<ChatMessage>> {
    m.into_iter()
        .enumerate()
        .map(|(i, m)| message_from(m, &format!("messages[{i}]")))
        .collect()
}

/// A `ChatCompletionRequest` as the engine's request.
pub fn chat_request(r: pb::ChatCompletionRequest) -> Result<BifrostRequest> {
    let messages = messages_from(r.messages)?;
    build(
        r.model,
        r.provider,
        RequestInput::Chat(messages),
        r.params,
        r.fallbacks,
    )
}

/// A `ChatCompletionStreamRequest` as the engine's request.
pub fn chat_stream_request(r: pb::ChatCompletionStreamRequest) -> Result<BifrostRequest> {
    let messages = messages_from(r.messages)?;
    build(
        r.model,
        r.provider,
        RequestInput::Chat(messages),
        r.params,
        r.fallbacks,
    )
}

/// A `CountTokensRequest` as the engine's (chat) request.
pub fn count_tokens_request(r: pb::CountTokensRequest) -> Result<BifrostRequest> {
    let messages = messages_from(r.messages)?;
    build(
        r.model,
        r.provider,
        RequestInput::Chat(messages),
        r.params,
        Vec::new(),
    )
}

/// A `TextCompletionRequest` as the engine's request.
pub fn text_request(r: pb::TextCompletionRequest) -> Result<BifrostRequest> {
    use pb::text_completion_request::Prompt;
    let prompt = match r.prompt {
        Some(Prompt::Text(t)) => PromptInput::Text(t),
        Some(Prompt::Batch(b)) => PromptInput::Batch(
            b.prompts
                .into_iter()
                .map(|v| value_to_json(v, "prompt"))
                .collect::<Result<_>>()?,
        ),
        None => {
            return Err(BifrostError::invalid_param(
                "prompt",
                "prompt is required for text completion",
            ));
        }
    };
    build(
        r.model,
        r.provider,
        RequestInput::TextCompletion(prompt),
        r.params,
        r.fallbacks,
    )
}

/// An `EmbeddingRequest` as the engine's request.
pub fn embedding_request(r: pb::EmbeddingRequest) -> Result<BifrostRequest> {
    use pb::embedding_input::Input;
    let input = match r.input.and_then(|i| i.input) {
        Some(Input::Text(t)) => EmbeddingInput::Text(t),
        Some(Input::Texts(t)) => EmbeddingInput::Texts(t.values),
        Some(Input::Tokens(t)) => EmbeddingInput::Tokens(t.tokens),
        Some(Input::TokenBatches(b)) => {
            EmbeddingInput::TokenBatches(b.batches.into_iter().map(|t| t.tokens).collect())
        }
        None => {
            return Err(BifrostError::invalid_param(
                "input",
                "input is required for embeddings",
            ));
        }
    };
    build(
        r.model,
        r.provider,
        RequestInput::Embedding(input),
        r.params,
        r.fallbacks,
    )
}

fn role_from(role: i32, field: &str) -> Result<Option<Role>> {
    Ok(Some(match pb::Role::try_from(role) {
        Ok(pb::Role::Unspecified) => return Ok(None),
        Ok(pb::Role::System) => Role::System,
        Ok(pb::Role::Developer) => Role::Developer,
        Ok(pb::Role::User) => Role::User,
        Ok(pb::Role::Assistant) => Role::Assistant,
        Ok(pb::Role::Tool) => Role::Tool,
        Ok(pb::Role::Function) => Role::Function,
        Ok(pb::Role::Chatbot) => Role::Chatbot,
        Err(_) => {
            return Err(BifrostError::invalid_param(
                &format!("{field}.role"),
                format!("{field}.role: unknown role {role}"),
            ));
        }
    }))
}

fn role_to(role: Option<Role>) -> pb::Role {
    match role {
        None => pb::Role::Unspecified,
        Some(Role::System) => pb::Role::System,
        Some(Role::Developer) => pb::Role::Developer,
        Some(Role::User) => pb::Role::User,
        Some(Role::Assistant) => pb::Role::Assistant,
        Some(Role::Tool) => pb::Role::Tool,
        Some(Role::Function) => pb::Role::Function,
        Some(Role::Chatbot) => pb::Role::Chatbot,
    }
}

/// A proto chat message (or delta) as the unified one; `field` names it in errors.
pub fn message_from(m: pb::ChatMessage, field: &str) -> Result<ChatMessage> {
    use pb::chat_message::Content;
    let content = match m.content {
        None => None,
        Some(Content::Text(t)) => Some(MessageContent::Text(t)),
        Some(Content::Parts(p)) => Some(MessageContent::Parts(
            p.parts
                .into_iter()
                .map(|p| part_from(p, field))
                .collect::<Result<_>>()?,
        )),
    };
    Ok(ChatMessage {
        role: role_from(m.role, field)?,
        content,
        name: m.name,
        tool_calls: nonempty(m.tool_calls.into_iter().map(tool_call_from).collect()),
        tool_call_id: m.tool_call_id,
        refusal: m.refusal,
        reasoning_content: m.reasoning_content,
        extra: extra_map(m.extra, field)?,
    })
}

fn part_from(p: pb::ContentPart, field: &str) -> Result<ContentPart> {
    if p.r#type.is_empty() {
        return Err(BifrostError::invalid_param(
            &format!("{field}.content"),
            format!("{field}.content: every content part needs a type"),
        ));
    }
    Ok(ContentPart {
        kind: p.r#type,
        text: p.text,
        image_url: p.image_url.map(|i| ImageUrl {
            url: i.url,
            detail: i.detail,
        }),
        input_audio: opt_struct(p.input_audio, "input_audio")?,
        file: opt_struct(p.file, "file")?,
    })
}

fn tool_call_from(c: pb::ToolCall) -> ToolCall {
    let f = c.function.unwrap_or_default();
    ToolCall {
        index: c.index,
        id: c.id,
        kind: c.r#type,
        function: FunctionCall {
            name: f.name,
            arguments: f.arguments,
        },
    }
}

fn tool_from(t: pb::Tool, i: usize) -> Result<Tool> {
    let f = t.function.ok_or_else(|| {
        BifrostError::invalid_param("tools", format!("tools[{i}] needs a function"))
    })?;
    if f.name.is_empty() {
        return Err(BifrostError::invalid_param(
            "tools",
            format!("tools[{i}].function needs a name"),
        ));
    }
    Ok(Tool {
        kind: if t.r#type.is_empty() {
            "function".to_owned()
        } else {
            t.r#type
        },
        function: FunctionDef {
            name: f.name,
            description: f.description,
            parameters: opt_struct(f.parameters, "tools")?,
            strict: f.strict,
        },
    })
}

/// Proto parameters as the unified ones; `extra` keys that name a typed parameter are
/// refused (they would silently lose to, or override, the typed field).
pub fn params_from(p: pb::ModelParameters) -> Result<ModelParameters> {
    let extra = extra_map(p.extra, "extra")?;
    if let Some(k) = extra.keys().find(|k| TYPED_PARAMS.contains(&k.as_str())) {
        return Err(BifrostError::invalid_param(
            "extra",
            format!("extra.{k}: set the typed field `{k}` instead"),
        ));
    }
    if let Some(k) = extra.keys().find(|k| REQUEST_KEYS.contains(&k.as_str())) {
        return Err(BifrostError::invalid_param(
            "extra",
            format!("extra.{k}: `{k}` is part of the request itself, not a provider parameter"),
        ));
    }
    Ok(ModelParameters {
        temperature: p.temperature,
        top_p: p.top_p,
        max_tokens: p.max_tokens,
        max_completion_tokens: p.max_completion_tokens,
        stop: opt_value(p.stop, "stop")?,
        n: p.n,
        seed: p.seed,
        presence_penalty: p.presence_penalty,
        frequency_penalty: p.frequency_penalty,
        logprobs: p.logprobs,
        top_logprobs: p.top_logprobs,
        logit_bias: opt_struct(p.logit_bias, "logit_bias")?,
        response_format: opt_struct(p.response_format, "response_format")?,
        tools: nonempty(
            p.tools
                .into_iter()
                .enumerate()
                .map(|(i, t)| tool_from(t, i))
                .collect::<Result<_>>()?,
        ),
        tool_choice: opt_value(p.tool_choice, "tool_choice")?,
        parallel_tool_calls: p.parallel_tool_calls,
        user: p.user,
        stream_options: p
            .stream_options
            .map(|s| {
                Ok::<_, BifrostError>(StreamOptions {
                    include_usage: s.include_usage,
                    extra: extra_map(s.extra, "stream_options")?,
                })
            })
            .transpose()?,
        encoding_format: p.encoding_format,
        dimensions: p.dimensions,
        extra,
    })
}

/// Keys of the HTTP API's request body that are not parameters (the RPC or the request's own
/// fields carry them); in `extra` they would reach the provider's body twice.
const REQUEST_KEYS: &[&str] = &[
    "model",
    "provider",
    "messages",
    "prompt",
    "text",
    "input",
    "stream",
    "stream_format",
    "fallbacks",
    "params",
];

/// The parameters `ModelParameters` names (and the HTTP API's alias `stop_sequences`).
const TYPED_PARAMS: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stop_sequences",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "stream_options",
    "encoding_format",
    "dimensions",
];

// ---------------------------------------------------------------------------------------
// Requests: core → proto (clients, tests)
// ---------------------------------------------------------------------------------------

/// A chat message as proto.
pub fn message_to(m: ChatMessage) -> Result<pb::ChatMessage> {
    use pb::chat_message::Content;
    let content = match m.content {
        None => None,
        Some(MessageContent::Text(t)) => Some(Content::Text(t)),
        Some(MessageContent::Parts(p)) => Some(Content::Parts(pb::ContentParts {
            parts: p.into_iter().map(part_to).collect::<Result<_>>()?,
        })),
    };
    Ok(pb::ChatMessage {
        role: role_to(m.role) as i32,
        content,
        name: m.name,
        tool_calls: m
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(tool_call_to)
            .collect(),
        tool_call_id: m.tool_call_id,
        refusal: m.refusal,
        reasoning_content: m.reasoning_content,
        extra: extra_struct(m.extra),
    })
}

fn part_to(p: ContentPart) -> Result<pb::ContentPart> {
    Ok(pb::ContentPart {
        r#type: p.kind,
        text: p.text,
        image_url: p.image_url.map(|i| pb::ImageUrl {
            url: i.url,
            detail: i.detail,
        }),
        input_audio: object_struct(p.input_audio, "input_audio")?,
        file: object_struct(p.file, "file")?,
    })
}

fn tool_call_to(c: ToolCall) -> pb::ToolCall {
    pb::ToolCall {
        index: c.index,
        id: c.id,
        r#type: c.kind,
        function: Some(pb::FunctionCall {
            name: c.function.name,
            arguments: c.function.arguments,
        }),
    }
}

/// Unified parameters as proto.
pub fn params_to(p: ModelParameters) -> Result<pb::ModelParameters> {
    Ok(pb::ModelParameters {
        temperature: p.temperature,
        top_p: p.top_p,
        max_tokens: p.max_tokens,
        max_completion_tokens: p.max_completion_tokens,
        stop: p.stop.map(json_to_value),
        n: p.n,
        seed: p.seed,
        presence_penalty: p.presence_penalty,
        frequency_penalty: p.frequency_penalty,
        logprobs: p.logprobs,
        top_logprobs: p.top_logprobs,
        logit_bias: object_struct(p.logit_bias, "logit_bias")?,
        response_format: object_struct(p.response_format, "response_format")?,
        tools: p
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                Ok(pb::Tool {
                    r#type: t.kind,
                    function: Some(pb::FunctionDefinition {
                        name: t.function.name,
                        description: t.function.description,
                        parameters: object_struct(t.function.parameters, "tools")?,
                        strict: t.function.strict,
                    }),
                })
            })
            .collect::<Result<_>>()?,
        tool_choice: p.tool_choice.map(json_to_value),
        parallel_tool_calls: p.parallel_tool_calls,
        user: p.user,
        stream_options: p.stream_options.map(|s| pb::StreamOptions {
            include_usage: s.include_usage,
            extra: extra_struct(s.extra),
        }),
        encoding_format: p.encoding_format,
        dimensions: p.dimensions,
        extra: extra_struct(p.extra),
    })
}

fn fallbacks_to(f: Vec<Fallback>) -> Vec<pb::Fallback> {
    f.into_iter()
        .map(|f| pb::Fallback {
            provider: f.provider.to_string(),
            model: f.model,
        })
        .collect()
}

fn wrong_input(what: &str) -> BifrostError {
    BifrostError::invalid_request(format!("not a {what} request"))
}

/// A chat request as a `ChatCompletionRequest` (`model` as `provider/model`).
pub fn chat_request_to(r: BifrostRequest) -> Result<pb::ChatCompletionRequest> {
    let RequestInput::Chat(messages) = r.input else {
        return Err(wrong_input("chat"));
    };
    Ok(pb::ChatCompletionRequest {
        model: format!("{}/{}", r.provider, r.model),
        provider: None,
        messages: messages
            .into_iter()
            .map(message_to)
            .collect::<Result<_>>()?,
        params: Some(params_to(r.params)?),
        fallbacks: fallbacks_to(r.fallbacks),
    })
}

/// A chat request as a `ChatCompletionStreamRequest`.
pub fn chat_stream_request_to(r: BifrostRequest) -> Result<pb::ChatCompletionStreamRequest> {
    let c = chat_request_to(r)?;
    Ok(pb::ChatCompletionStreamRequest {
        model: c.model,
        provider: c.provider,
        messages: c.messages,
        params: c.params,
        fallbacks: c.fallbacks,
    })
}

/// A text completion request as a `TextCompletionRequest`.
pub fn text_request_to(r: BifrostRequest) -> Result<pb::TextCompletionRequest> {
    use pb::text_completion_request::Prompt;
    let RequestInput::TextCompletion(prompt) = r.input else {
        return Err(wrong_input("text completion"));
    };
    Ok(pb::TextCompletionRequest {
        model: format!("{}/{}", r.provider, r.model),
        provider: None,
        prompt: Some(match prompt {
            PromptInput::Text(t) => Prompt::Text(t),
            PromptInput::Batch(b) => Prompt::Batch(pb::PromptBatch {
                prompts: b.into_iter().map(json_to_value).collect(),
            }),
        }),
        params: Some(params_to(r.params)?),
        fallbacks: fallbacks_to(r.fallbacks),
    })
}

/// An embedding request as an `EmbeddingRequest`.
pub fn embedding_request_to(r: BifrostRequest) -> Result<pb::EmbeddingRequest> {
    use pb::embedding_input::Input;
    let RequestInput::Embedding(input) = r.input else {
        return Err(wrong_input("embedding"));
    };
    let input = match input {
        EmbeddingInput::Text(t) => Input::Text(t),
        EmbeddingInput::Texts(t) => Input::Texts(pb::StringList { values: t }),
        EmbeddingInput::Tokens(t) => Input::Tokens(pb::TokenList { tokens: t }),
        EmbeddingInput::TokenBatches(b) => Input::TokenBatches(pb::TokenBatches {
            batches: b
                .into_iter()
                .map(|tokens| pb::TokenList { tokens })
                .collect(),
        }),
    };
    Ok(pb::EmbeddingRequest {
        model: format!("{}/{}", r.provider, r.model),
        provider: None,
        input: Some(pb::EmbeddingInput { input: Some(input) }),
        params: Some(params_to(r.params)?),
        fallbacks: fallbacks_to(r.fallbacks),
    })
}

// ---------------------------------------------------------------------------------------
// Answers: core → proto, and back
// ---------------------------------------------------------------------------------------

/// A failure to express an engine answer in proto: the gateway's fault (500).
fn encode_error(what: &str) -> BifrostError {
    BifrostError::gateway(
        500,
        "internal_error",
        format!("cannot encode the answer for gRPC: {what}"),
    )
}

fn choice_to(c: Choice) -> Result<pb::Choice> {
    Ok(pb::Choice {
        index: c.index,
        message: c.message.map(message_to).transpose()?,
        delta: c.delta.map(message_to).transpose()?,
        text: c.text,
        finish_reason: c.finish_reason,
        logprobs: c.logprobs.map(json_to_value),
    })
}

fn choice_from(c: pb::Choice) -> Result<Choice> {
    Ok(Choice {
        index: c.index,
        message: c.message.map(|m| message_from(m, "message")).transpose()?,
        delta: c.delta.map(|m| message_from(m, "delta")).transpose()?,
        text: c.text,
        finish_reason: c.finish_reason,
        logprobs: opt_value(c.logprobs, "logprobs")?,
    })
}

/// Usage as proto.
pub fn usage_to(u: Usage) -> pb::Usage {
    pb::Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens,
        prompt_tokens_details: u.prompt_tokens_details.map(|d| pb::PromptTokensDetails {
            cached_tokens: d.cached_tokens,
            audio_tokens: d.audio_tokens,
        }),
        completion_tokens_details: u.completion_tokens_details.map(|d| {
            pb::CompletionTokensDetails {
                reasoning_tokens: d.reasoning_tokens,
                audio_tokens: d.audio_tokens,
                accepted_prediction_tokens: d.accepted_prediction_tokens,
                rejected_prediction_tokens: d.rejected_prediction_tokens,
            }
        }),
    }
}

/// Proto usage as the unified one.
pub fn usage_from(u: pb::Usage) -> Usage {
    Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens,
        prompt_tokens_details: u.prompt_tokens_details.map(|d| PromptTokensDetails {
            cached_tokens: d.cached_tokens,
            audio_tokens: d.audio_tokens,
        }),
        completion_tokens_details: u
            .completion_tokens_details
            .map(|d| CompletionTokensDetails {
                reasoning_tokens: d.reasoning_tokens,
                audio_tokens: d.audio_tokens,
                accepted_prediction_tokens: d.accepted_prediction_tokens,
                rejected_prediction_tokens: d.rejected_prediction_tokens,
            }),
    }
}

/// Bifrost's extra fields as proto.
pub fn extra_fields_to(e: ExtraFields) -> pb::ExtraFields {
    pb::ExtraFields {
        provider: e.provider.map(|p| p.to_string()),
        model_requested: e.model_requested,
        request_type: e.request_type,
        latency_ms: e.latency,
        chunk_index: e.chunk_index,
        retries: e.retries,
        fallback_index: e.fallback_index.map(|i| i as u64),
        raw_response: e.raw_response.map(json_to_value),
    }
}

/// Proto extra fields as the unified ones.
pub fn extra_fields_from(e: pb::ExtraFields) -> Result<ExtraFields> {
    Ok(ExtraFields {
        provider: e.provider.map(|p| ProviderKey::parse(&p)),
        model_requested: e.model_requested,
        request_type: e.request_type,
        latency: e.latency_ms,
        chunk_index: e.chunk_index,
        retries: e.retries,
        fallback_index: e
            .fallback_index
            .map(|i| {
                usize::try_from(i).map_err(|_| {
                    BifrostError::invalid_param("fallback_index", "fallback_index out of range")
                })
            })
            .transpose()?,
        raw_response: opt_value(e.raw_response, "raw_response")?,
    })
}

/// Defines the conversions of one completion-shaped answer message (chat, chunk, text),
/// which share their fields with [`BifrostResponse`].
macro_rules! completion_conversions {
    ($to:ident, $from:ident, $msg:ty, $doc:literal) => {
        #[doc = concat!("The engine's answer as a `", $doc, "`.")]
        pub fn $to(r: BifrostResponse) -> Result<$msg> {
            Ok(<$msg>::from_parts(
                r.id,
                r.object,
                r.created,
                r.model,
                r.choices
                    .unwrap_or_default()
                    .into_iter()
                    .map(choice_to)
                    .collect::<Result<_>>()?,
                r.usage.map(usage_to),
                r.system_fingerprint,
                r.service_tier,
                Some(extra_fields_to(r.extra_fields)),
            ))
        }

        #[doc = concat!("A `", $doc, "` as the engine's answer (for clients and tests).")]
        pub fn $from(m: $msg) -> Result<BifrostResponse> {
            Ok(BifrostResponse {
                id: m.id,
                object: m.object,
                created: m.created,
                model: m.model,
                choices: Some(
                    m.choices
                        .into_iter()
                        .map(choice_from)
                        .collect::<Result<_>>()?,
                ),
                data: None,
                usage: m.usage.map(usage_from),
                system_fingerprint: m.system_fingerprint,
                service_tier: m.service_tier,
                extra_fields: m
                    .extra_fields
                    .map(extra_fields_from)
                    .transpose()?
                    .unwrap_or_default(),
                wire_body: None,
            })
        }

        impl $msg {
            #[expect(clippy::too_many_arguments, reason = "one per message field")]
            fn from_parts(
                id: String,
                object: String,
                created: u64,
                model: String,
                choices: Vec<pb::Choice>,
                usage: Option<pb::Usage>,
                system_fingerprint: Option<String>,
                service_tier: Option<String>,
                extra_fields: Option<pb::ExtraFields>,
            ) -> Self {
                Self {
                    id,
                    object,
                    created,
                    model,
                    choices,
                    usage,
                    system_fingerprint,
                    service_tier,
                    extra_fields,
                }
            }
        }
    };
}

completion_conversions!(
    chat_response_to,
    chat_response_from,
    pb::ChatCompletionResponse,
    "ChatCompletionResponse"
);
completion_conversions!(
    chunk_to,
    chunk_from,
    pb::ChatCompletionStreamResponse,
    "ChatCompletionStreamResponse"
);
completion_conversions!(
    text_response_to,
    text_response_from,
    pb::TextCompletionResponse,
    "TextCompletionResponse"
);

/// The engine's embedding answer as an `EmbeddingResponse`.
pub fn embedding_response_to(r: BifrostResponse) -> Result<pb::EmbeddingResponse> {
    use pb::embedding::Vector;
    let data = r
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let vector = match d.embedding {
                Value::String(s) => Vector::Base64(s),
                Value::Array(a) => Vector::Floats(pb::FloatVector {
                    values: a
                        .iter()
                        .map(|v| {
                            v.as_f64()
                                .ok_or_else(|| encode_error("a non-number in an embedding"))
                        })
                        .collect::<Result<_>>()?,
                }),
                _ => {
                    return Err(encode_error(
                        "an embedding that is neither floats nor base64",
                    ));
                }
            };
            Ok(pb::Embedding {
                index: d.index,
                object: d.object,
                vector: Some(vector),
            })
        })
        .collect::<Result<_>>()?;
    Ok(pb::EmbeddingResponse {
        id: r.id,
        object: r.object,
        created: r.created,
        model: r.model,
        data,
        usage: r.usage.map(usage_to),
        extra_fields: Some(extra_fields_to(r.extra_fields)),
    })
}

/// An `EmbeddingResponse` as the engine's answer (for clients and tests).
pub fn embedding_response_from(m: pb::EmbeddingResponse) -> Result<BifrostResponse> {
    use pb::embedding::Vector;
    let data = m
        .data
        .into_iter()
        .map(|d| {
            let embedding = match d.vector {
                Some(Vector::Base64(s)) => Value::String(s),
                Some(Vector::Floats(f)) => Value::Array(
                    f.values
                        .into_iter()
                        .map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number))
                        .collect(),
                ),
                None => Value::Null,
            };
            EmbeddingData {
                index: d.index,
                object: d.object,
                embedding,
            }
        })
        .collect();
    Ok(BifrostResponse {
        id: m.id,
        object: m.object,
        created: m.created,
        model: m.model,
        data: Some(data),
        usage: m.usage.map(usage_from),
        extra_fields: m
            .extra_fields
            .map(extra_fields_from)
            .transpose()?
            .unwrap_or_default(),
        ..BifrostResponse::default()
    })
}

/// The model list as proto.
pub fn models_to(l: ModelList) -> pb::ListModelsResponse {
    pb::ListModelsResponse {
        object: l.object,
        data: l
            .data
            .into_iter()
            .map(|m| pb::Model {
                id: m.id,
                object: m.object,
                created: m.created,
                owned_by: m.owned_by,
            })
            .collect(),
    }
}

/// A proto model list as the unified one.
pub fn models_from(l: pb::ListModelsResponse) -> ModelList {
    ModelList {
        object: l.object,
        data: l
            .data
            .into_iter()
            .map(|m| ModelInfo {
                id: m.id,
                object: m.object,
                created: m.created,
                owned_by: m.owned_by,
            })
            .collect(),
    }
}

/// A token count as proto.
pub fn token_count_to(c: TokenCount) -> pb::CountTokensResponse {
    pb::CountTokensResponse {
        input_tokens: c.input_tokens,
        raw: c.raw.map(json_to_value),
    }
}

/// A proto token count as the unified one.
pub fn token_count_from(c: pb::CountTokensResponse) -> Result<TokenCount> {
    Ok(TokenCount {
        input_tokens: c.input_tokens,
        raw: opt_value(c.raw, "raw")?,
    })
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The unified error as proto (what a failed call's status details carry).
pub fn error_to(e: &BifrostError) -> pb::BifrostError {
    pb::BifrostError {
        event_id: e.event_id.clone(),
        is_bifrost_error: e.is_bifrost_error,
        status_code: e.status_code.map(u32::from),
        error: Some(pb::ErrorBody {
            r#type: e.error.kind.clone(),
            code: e.error.code.clone(),
            message: e.error.message.clone(),
            param: e.error.param.clone(),
        }),
        extra_fields: e.extra_fields.as_ref().map(|x| pb::ErrorExtraFields {
            provider: x.provider.as_ref().map(ToString::to_string),
            model_requested: x.model_requested.clone(),
        }),
        source: match e.origin {
            ErrorSource::Client => pb::ErrorSource::Client,
            ErrorSource::Provider => pb::ErrorSource::Provider,
            ErrorSource::Gateway => pb::ErrorSource::Gateway,
        } as i32,
        retryable: e.retryable,
        retry_after: e
            .retry_after
            .and_then(|d| prost_types::Duration::try_from(d).ok()),
    }
}

/// A proto error as the unified one (for clients and tests).
pub fn error_from(e: pb::BifrostError) -> BifrostError {
    let body = e.error.unwrap_or_default();
    BifrostError {
        event_id: e.event_id,
        is_bifrost_error: e.is_bifrost_error,
        status_code: e.status_code.and_then(|s| u16::try_from(s).ok()),
        error: ErrorBody {
            kind: body.r#type,
            code: body.code,
            message: body.message,
            param: body.param,
        },
        extra_fields: e.extra_fields.map(|x| ErrorExtraFields {
            provider: x.provider.map(|p| ProviderKey::parse(&p)),
            model_requested: x.model_requested,
        }),
        allow_fallbacks: None,
        retry_after: e.retry_after.and_then(|d| Duration::try_from(d).ok()),
        origin: match pb::ErrorSource::try_from(e.source) {
            Ok(pb::ErrorSource::Client) => ErrorSource::Client,
            Ok(pb::ErrorSource::Provider) => ErrorSource::Provider,
            _ => ErrorSource::Gateway,
        },
        retryable: e.retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use serde_json::json;

    /// Encodes and decodes a message, as the wire would.
    fn wire<M: Message + Default>(m: M) -> M {
        M::decode(m.encode_to_vec().as_slice()).unwrap()
    }

    /// Every field of a chat request that the HTTP API carries, in Bifrost's JSON.
    fn full_chat_json() -> Value {
        json!({
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": {"chat": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": "and kind"},
                {"role": "user", "name": "ann", "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "f-1"}},
                    {"type": "brand_new_part", "text": "kept"}
                ]},
                {"role": "assistant", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"index": 1, "id": "c2", "type": "function", "function": {"name": "noop", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "\"sunny\""},
                {"role": "function", "name": "legacy", "content": "42"},
                {"role": "assistant", "content": "ok", "refusal": "no", "reasoning_content": "hmm",
                    "audio": {"id": "a1"}, "annotations": []},
                {"role": "chatbot", "content": "hi"}
            ]},
            "params": {
                "temperature": 0.25, "top_p": 0.5, "max_tokens": 100, "max_completion_tokens": 90,
                "stop": ["x", "y"], "n": 2, "seed": -7, "presence_penalty": 0.125,
                "frequency_penalty": -0.5, "logprobs": true, "top_logprobs": 3,
                "logit_bias": {"50256": -100}, "response_format": {"type": "json_schema",
                    "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "description": "Weather for a city", "strict": false,
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"], "additionalProperties": false}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": false, "user": "u-1",
                "stream_options": {"include_usage": true, "continuous_usage_stats": true},
                "encoding_format": "float", "dimensions": 8,
                "top_k": 40, "mock": {"status": 429, "delay_ms": 5},
                "vendor": {"list": [1, 0.5, "s", null, true, {"deep": [[]]}], "big": 1e300}
            },
            "fallbacks": [
                {"provider": "anthropic", "model": "claude-3-haiku"},
                {"provider": "openrouter", "model": "meta/llama-3"}
            ]
        })
    }

    #[test]
    fn chat_requests_round_trip_without_loss() {
        let original: BifrostRequest = serde_json::from_value(full_chat_json()).unwrap();
        let proto = wire(chat_request_to(original.clone()).unwrap());
        assert_eq!(proto.model, "openai/gpt-4o-mini");
        let back = chat_request(proto).unwrap();
        assert_eq!(back, original);
        assert_eq!(serde_json::to_value(&back).unwrap(), full_chat_json());

        let stream = wire(chat_stream_request_to(original.clone()).unwrap());
        assert_eq!(chat_stream_request(stream).unwrap(), original);
    }

    #[test]
    fn whole_numbers_stay_integers_for_the_provider() {
        let original: BifrostRequest = serde_json::from_value(full_chat_json()).unwrap();
        let back = chat_request(wire(chat_request_to(original).unwrap())).unwrap();
        let body = serde_json::to_string(&back.params).unwrap();
        assert!(body.contains(r#""top_k":40"#), "{body}");
        assert!(body.contains(r#""50256":-100"#), "{body}");
    }

    #[test]
    fn text_and_embedding_requests_round_trip() {
        for input in [
            json!({"text_completion": "once upon"}),
            json!({"text_completion": ["a", [1, 2, 3]]}),
            json!({"embedding": "one"}),
            json!({"embedding": ["a", "b"]}),
            json!({"embedding": [1, 2, 3]}),
            json!({"embedding": [[1, 2], [3]]}),
        ] {
            let v = json!({"provider": "cohere", "model": "m", "input": input,
                "params": {"dimensions": 4, "truncate": "END"},
                "fallbacks": [{"provider": "openai", "model": "x"}]});
            let original: BifrostRequest = serde_json::from_value(v.clone()).unwrap();
            let back = match &original.input {
                RequestInput::TextCompletion(_) => {
                    text_request(wire(text_request_to(original.clone()).unwrap())).unwrap()
                }
                _ => embedding_request(wire(embedding_request_to(original.clone()).unwrap()))
                    .unwrap(),
            };
            assert_eq!(back, original, "{v}");
        }
    }

    #[test]
    fn the_v1_0_form_with_a_separate_provider_is_accepted() {
        let r = chat_request(pb::ChatCompletionRequest {
            model: "meta/llama".into(),
            provider: Some("openrouter".into()),
            messages: vec![message_to(ChatMessage::text(Role::User, "hi")).unwrap()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (r.provider, r.model.as_str()),
            (ProviderKey::OpenRouter, "meta/llama")
        );
        let r = chat_request(pb::ChatCompletionRequest {
            model: "openrouter/meta/llama".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (r.provider, r.model.as_str()),
            (ProviderKey::OpenRouter, "meta/llama")
        );
    }

    fn full_response_json() -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                    "logprobs": {"content": [{"token": "a", "logprob": -0.5, "bytes": [97]}]}},
                {"index": 1, "finish_reason": "stop", "message": {"role": "assistant",
                    "content": "hello", "annotations": [{"type": "url_citation"}]}}
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 10, "audio_tokens": 1},
                "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 2,
                    "accepted_prediction_tokens": 3, "rejected_prediction_tokens": 4}},
            "system_fingerprint": "fp_1", "service_tier": "default",
            "extra_fields": {"provider": "openai", "model_requested": "gpt-4o-mini",
                "request_type": "chat_completion", "latency": 12, "retries": 1, "fallback_index": 2,
                "raw_response": {"id": "chatcmpl-1", "odd": [0.5, null]}}
        })
    }

    #[test]
    fn answers_round_trip_without_loss() {
        let original: BifrostResponse = serde_json::from_value(full_response_json()).unwrap();
        let back = chat_response_from(wire(chat_response_to(original.clone()).unwrap())).unwrap();
        assert_eq!(back, original);
        assert_eq!(serde_json::to_value(&back).unwrap(), full_response_json());

        let mut text = original.clone();
        text.object = "text_completion".into();
        text.choices = Some(vec![Choice {
            index: 0,
            text: Some("once".into()),
            finish_reason: Some("length".into()),
            ..Choice::default()
        }]);
        let back = text_response_from(wire(text_response_to(text.clone()).unwrap())).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn stream_chunks_round_trip_with_null_finish_reason_and_usage_chunks() {
        for v in [
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "he"}, "finish_reason": null}],
                "extra_fields": {"provider": "openai", "chunk_index": 0}}),
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                    "function": {"arguments": "{\"ci"}}]}, "finish_reason": null}],
                "extra_fields": {"chunk_index": 3}}),
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                "extra_fields": {}}),
        ] {
            let original: BifrostResponse = serde_json::from_value(v.clone()).unwrap();
            let back = chunk_from(wire(chunk_to(original.clone()).unwrap())).unwrap();
            assert_eq!(back, original);
            assert_eq!(serde_json::to_value(&back).unwrap(), v);
        }
    }

    #[test]
    fn embeddings_models_and_counts_round_trip() {
        let v = json!({"id": "", "object": "list", "created": 0, "model": "e",
            "data": [{"index": 0, "object": "embedding", "embedding": [0.5, -1.25]},
                     {"index": 1, "object": "embedding", "embedding": "AAAAPw=="}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2},
            "extra_fields": {"provider": "openai", "latency": 3}});
        let original: BifrostResponse = serde_json::from_value(v.clone()).unwrap();
        let back = embedding_response_from(wire(embedding_response_to(original.clone()).unwrap()))
            .unwrap();
        assert_eq!(back, original);

        let list = ModelList {
            object: "list".into(),
            data: vec![ModelInfo {
                id: "openai/gpt-4o".into(),
                object: "model".into(),
                created: 5,
                owned_by: "openai".into(),
            }],
        };
        assert_eq!(models_from(wire(models_to(list.clone()))), list);

        let count = TokenCount {
            input_tokens: 17,
            raw: Some(json!({"input_tokens": 17})),
        };
        let back = token_count_from(wire(token_count_to(count))).unwrap();
        assert_eq!(
            (back.input_tokens, back.raw),
            (17, Some(json!({"input_tokens": 17})))
        );
    }

    #[test]
    fn errors_round_trip() {
        let mut e = BifrostError::provider(
            429,
            ErrorBody {
                kind: Some("rate_limit_error".into()),
                code: Some("rl".into()),
                message: "slow down".into(),
                param: Some("model".into()),
            },
        )
        .with_origin(&ProviderKey::OpenAI, "gpt-4o");
        e.retry_after = Some(Duration::from_secs(3));
        e.event_id = Some("ev".into());
        let back = error_from(wire(error_to(&e)));
        assert_eq!(back, e);
        let q = BifrostError::queue_full(&ProviderKey::Groq);
        let back = error_from(wire(error_to(&q)));
        assert_eq!(
            (back.origin, back.is_bifrost_error),
            (ErrorSource::Gateway, true)
        );
    }

    fn chat_with(f: impl FnOnce(&mut pb::ChatCompletionRequest)) -> BifrostError {
        let mut r = pb::ChatCompletionRequest {
            model: "openai/gpt-4o".into(),
            messages: vec![message_to(ChatMessage::text(Role::User, "hi")).unwrap()],
            ..Default::default()
        };
        f(&mut r);
        chat_request(r).unwrap_err()
    }

    fn num(n: f64) -> prost_types::Value {
        prost_types::Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    #[test]
    fn invalid_input_is_a_400_naming_the_field() {
        let cases: Vec<(BifrostError, &str)> = vec![
            (chat_with(|r| r.model.clear()), "model"),
            (chat_with(|r| r.model = "gpt-4o".into()), "model"),
            (chat_with(|r| r.messages[0].role = 99), "messages[0].role"),
            (
                chat_with(|r| {
                    r.messages[0].content =
                        Some(pb::chat_message::Content::Parts(pb::ContentParts {
                            parts: vec![pb::ContentPart::default()],
                        }));
                }),
                "messages[0].content",
            ),
            (
                chat_with(|r| {
                    r.fallbacks.push(pb::Fallback {
                        provider: "anthropic".into(),
                        model: String::new(),
                    });
                }),
                "fallbacks",
            ),
            (
                chat_with(|r| {
                    r.params = Some(pb::ModelParameters {
                        tools: vec![pb::Tool::default()],
                        ..Default::default()
                    });
                }),
                "tools",
            ),
            (
                chat_with(|r| {
                    r.params = Some(pb::ModelParameters {
                        stop: Some(num(f64::NAN)),
                        ..Default::default()
                    });
                }),
                "stop",
            ),
            (
                chat_with(|r| {
                    let mut extra = prost_types::Struct::default();
                    extra.fields.insert("temperature".into(), num(1.0));
                    r.params = Some(pb::ModelParameters {
                        extra: Some(extra),
                        ..Default::default()
                    });
                }),
                "extra",
            ),
            (
                chat_with(|r| {
                    let mut extra = prost_types::Struct::default();
                    extra.fields.insert("stream".into(), num(1.0));
                    r.params = Some(pb::ModelParameters {
                        extra: Some(extra),
                        ..Default::default()
                    });
                }),
                "extra",
            ),
            (
                text_request(pb::TextCompletionRequest {
                    model: "openai/x".into(),
                    ..Default::default()
                })
                .unwrap_err(),
                "prompt",
            ),
            (
                embedding_request(pb::EmbeddingRequest {
                    model: "openai/x".into(),
                    input: Some(pb::EmbeddingInput::default()),
                    ..Default::default()
                })
                .unwrap_err(),
                "input",
            ),
        ];
        for (e, param) in cases {
            assert_eq!(e.http_status(), 400, "{e:?}");
            assert_eq!(e.kind(), "invalid_request_error");
            assert_eq!(e.error.param.as_deref(), Some(param), "{e:?}");
        }
    }

    #[test]
    fn answers_that_proto_cannot_express_are_gateway_errors() {
        let r = BifrostResponse {
            data: Some(vec![EmbeddingData {
                index: 0,
                object: "embedding".into(),
                embedding: json!({"not": "a vector"}),
            }]),
            ..BifrostResponse::default()
        };
        assert_eq!(embedding_response_to(r).unwrap_err().http_status(), 500);
    }
}
