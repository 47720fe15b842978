//! The unified chat and embedding requests as Cohere v2 bodies (`/v2/chat`, `/v2/embed`),
//! borrowed from the request wherever the shapes agree.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::schemas::{
    BifrostError, BifrostRequest, ChatMessage, EmbeddingInput, ImageUrl, MessageContent,
    ModelParameters, ProviderKey, RequestInput, Role, Tool,
};

/// OpenAI parameters Cohere has no equivalent for; dropped rather than rejected by Cohere.
const DROPPED_PARAMS: [&str; 2] = ["service_tier", "store"];

/// `input_type` when the caller does not choose one (documents being indexed).
pub(super) const DEFAULT_INPUT_TYPE: &str = "search_document";

/// `POST /v2/chat` body.
#[derive(Debug, Serialize)]
pub(super) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    /// Cohere-only parameters (`safety_mode`, `documents`, `thinking`, …) passed through.
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a Value>,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_plan: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Parts(Vec<Part<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: &'a ImageUrl },
}

#[derive(Debug, Serialize)]
struct OutToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunctionCall<'a>,
}

#[derive(Debug, Serialize)]
struct OutFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// Cohere v2 tools have OpenAI's shape without `strict` (that is `strict_tools`, request-wide).
#[derive(Debug, Serialize)]
struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    function: OutFunctionDef<'a>,
}

#[derive(Debug, Serialize)]
struct OutFunctionDef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
}

/// Builds the `/v2/chat` body.
pub(super) fn chat_request<'a>(
    provider: &ProviderKey,
    req: &'a BifrostRequest,
    stream: bool,
) -> Result<ChatRequest<'a>, BifrostError> {
    let RequestInput::Chat(messages) = &req.input else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    let p = &req.params;
    let messages = messages
        .iter()
        .map(|m| message(provider, m))
        .collect::<Result<_, _>>()?;
    let (tool_choice, only_tool) = tool_choice(p.tool_choice.as_ref());
    let tools: Vec<OutTool<'a>> = p
        .tools
        .iter()
        .flatten()
        .filter(|t| only_tool.is_none_or(|name| t.function.name == name))
        .map(out_tool)
        .collect();
    let strict = p
        .tools
        .iter()
        .flatten()
        .any(|t| t.function.strict == Some(true));
    let extra = passthrough(&p.extra);
    Ok(ChatRequest {
        model: &req.model,
        messages,
        strict_tools: (strict && !p.extra.contains_key("strict_tools")).then_some(true),
        tools,
        tool_choice,
        temperature: p.temperature,
        p: p.top_p.filter(|_| !p.extra.contains_key("p")),
        k: p.extra.get("top_k").filter(|_| !p.extra.contains_key("k")),
        max_tokens: p.max_completion_tokens.or(p.max_tokens),
        stop_sequences: stop_sequences(p.stop.as_ref()),
        seed: p.seed,
        frequency_penalty: p.frequency_penalty,
        presence_penalty: p.presence_penalty,
        response_format: p.response_format.as_ref().map(response_format),
        logprobs: p.logprobs,
        stream,
        extra,
    })
}

/// Parameters Cohere does not know under OpenAI's name pass through unless already mapped.
fn passthrough(extra: &Map<String, Value>) -> BTreeMap<&str, &Value> {
    extra
        .iter()
        .filter(|(k, _)| k.as_str() != "top_k" && !DROPPED_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

fn message<'a>(provider: &ProviderKey, m: &'a ChatMessage) -> Result<Message<'a>, BifrostError> {
    let role = match m.role {
        Some(Role::System | Role::Developer) => "system",
        Some(Role::Assistant | Role::Chatbot) => "assistant",
        Some(Role::Tool | Role::Function) => "tool",
        Some(Role::User) | None => "user",
    };
    let content = match &m.content {
        None => None,
        Some(MessageContent::Text(t)) => Some(Content::Text(t)),
        Some(MessageContent::Parts(parts)) => Some(Content::Parts(
            parts
                .iter()
                .map(
                    |part| match (part.kind.as_str(), &part.text, &part.image_url) {
                        ("text", Some(text), _) => Ok(Part::Text { text }),
                        ("image_url", _, Some(image_url)) => Ok(Part::ImageUrl { image_url }),
                        (kind, _, _) => Err(BifrostError::unsupported_operation(
                            provider,
                            &format!("{kind} content parts"),
                        )),
                    },
                )
                .collect::<Result<_, _>>()?,
        )),
    };
    let tool_calls: Vec<OutToolCall<'a>> = m
        .tool_calls
        .iter()
        .flatten()
        .map(|c| OutToolCall {
            id: c.id.as_deref(),
            kind: "function",
            function: OutFunctionCall {
                name: c.function.name.as_deref().unwrap_or_default(),
                arguments: &c.function.arguments,
            },
        })
        .collect();
    Ok(Message {
        role,
        content,
        // A plan only makes sense next to the calls it led to.
        tool_plan: m
            .reasoning_content
            .as_deref()
            .filter(|_| !tool_calls.is_empty()),
        tool_calls,
        tool_call_id: m.tool_call_id.as_deref(),
    })
}

fn out_tool(t: &Tool) -> OutTool<'_> {
    OutTool {
        kind: &t.kind,
        function: OutFunctionDef {
            name: &t.function.name,
            description: t.function.description.as_deref(),
            parameters: t.function.parameters.as_ref(),
        },
    }
}

/// OpenAI's `tool_choice` as Cohere's: `none` → `NONE`, `required` → `REQUIRED`, `auto` →
/// left out (Cohere's default). A named function becomes `REQUIRED` with only that tool
/// offered, the closest Cohere gets to forcing one function.
fn tool_choice(choice: Option<&Value>) -> (Option<&'static str>, Option<&str>) {
    match choice {
        Some(Value::String(s)) if s == "none" => (Some("NONE"), None),
        Some(Value::String(s)) if s == "required" || s == "any" => (Some("REQUIRED"), None),
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            (Some("REQUIRED"), name)
        }
        _ => (None, None),
    }
}

/// `stop` (a string or a list) as Cohere's `stop_sequences` list.
fn stop_sequences(stop: Option<&Value>) -> Option<Value> {
    match stop? {
        s @ Value::String(_) => Some(Value::Array(vec![s.clone()])),
        a @ Value::Array(_) => Some(a.clone()),
        _ => None,
    }
}

/// OpenAI's `response_format` as Cohere's: `json_schema {schema}` becomes
/// `json_object` with `json_schema`; `json_object` and `text` are the same in both.
fn response_format(rf: &Value) -> Value {
    if rf.get("type").and_then(Value::as_str) != Some("json_schema") {
        return rf.clone();
    }
    let schema = rf.get("json_schema").and_then(|j| j.get("schema")).cloned();
    let mut out = Map::new();
    out.insert("type".into(), Value::from("json_object"));
    if let Some(schema) = schema {
        out.insert("json_schema".into(), schema);
    }
    Value::Object(out)
}

/// `POST /v2/embed` body.
#[derive(Debug, Serialize)]
pub(super) struct EmbedRequest<'a> {
    model: &'a str,
    texts: Texts<'a>,
    input_type: &'a str,
    embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Texts<'a> {
    One([&'a str; 1]),
    Many(&'a [String]),
}

/// Builds the `/v2/embed` body: text inputs only; `input_type` from the request's extra
/// parameters, else [`DEFAULT_INPUT_TYPE`]; `dimensions` as `output_dimension`.
pub(super) fn embed_request<'a>(
    provider: &ProviderKey,
    req: &'a BifrostRequest,
) -> Result<EmbedRequest<'a>, BifrostError> {
    let RequestInput::Embedding(input) = &req.input else {
        return Err(BifrostError::invalid_request("embedding needs an input"));
    };
    let texts = match input {
        EmbeddingInput::Text(t) => Texts::One([t]),
        EmbeddingInput::Texts(t) => Texts::Many(t),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(BifrostError::unsupported_operation(
                provider,
                "token-array embedding input",
            ));
        }
    };
    let p: &ModelParameters = &req.params;
    Ok(EmbedRequest {
        model: &req.model,
        texts,
        input_type: p
            .extra
            .get("input_type")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_INPUT_TYPE),
        embedding_types: ["float"],
        output_dimension: p.dimensions,
        extra: p
            .extra
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "input_type" | "embedding_types"))
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat_json(req: Value, stream: bool) -> Value {
        let mut full = json!({"provider": "cohere", "model": "command-a-03-2025", "params": {}});
        full["input"] = json!({"chat": req["messages"].clone()});
        if let Some(p) = req.get("params") {
            full["params"] = p.clone();
        }
        let r: BifrostRequest = serde_json::from_value(full).unwrap();
        serde_json::to_value(chat_request(&ProviderKey::Cohere, &r, stream).unwrap()).unwrap()
    }

    #[test]
    fn messages_roles_tools_and_results() {
        let body = chat_json(
            json!({"messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
                {"role": "assistant", "reasoning_content": "I will call get_weather.",
                    "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ]}),
            true,
        );
        assert_eq!(
            body,
            json!({"model": "command-a-03-2025", "stream": true, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
                {"role": "assistant", "tool_plan": "I will call get_weather.",
                    "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ]})
        );
    }

    #[test]
    fn parameters_map_to_cohere_names() {
        let body = chat_json(
            json!({"messages": [{"role": "user", "content": "hi"}], "params": {
                "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_completion_tokens": 100,
                "stop": "END", "seed": 7, "frequency_penalty": 0.1, "presence_penalty": 0.2,
                "n": 1, "user": "u1", "parallel_tool_calls": true, "logit_bias": {"1": 2},
                "response_format": {"type": "json_schema", "json_schema": {"name": "p",
                    "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {"name": "a", "strict": true,
                    "parameters": {"type": "object"}}},
                    {"type": "function", "function": {"name": "b"}}],
                "tool_choice": {"type": "function", "function": {"name": "b"}},
                "safety_mode": "STRICT", "service_tier": "auto"
            }}),
            false,
        );
        assert_eq!(
            body,
            json!({"model": "command-a-03-2025",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.3, "p": 0.9, "k": 40, "max_tokens": 100,
                "stop_sequences": ["END"], "seed": 7, "frequency_penalty": 0.1,
                "presence_penalty": 0.2,
                "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
                "tools": [{"type": "function", "function": {"name": "b"}}],
                "tool_choice": "REQUIRED", "strict_tools": true, "safety_mode": "STRICT"})
        );
    }

    #[test]
    fn tool_choice_strings() {
        assert_eq!(tool_choice(Some(&json!("none"))), (Some("NONE"), None));
        assert_eq!(
            tool_choice(Some(&json!("required"))),
            (Some("REQUIRED"), None)
        );
        assert_eq!(tool_choice(Some(&json!("auto"))), (None, None));
        assert_eq!(
            response_format(&json!({"type": "json_object"})),
            json!({"type": "json_object"})
        );
    }

    #[test]
    fn audio_parts_are_unsupported_and_embeddings_default_input_type() {
        let r: BifrostRequest = serde_json::from_value(json!({"provider": "cohere", "model": "m",
            "input": {"chat": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}}))
        .unwrap();
        let e = chat_request(&ProviderKey::Cohere, &r, false).unwrap_err();
        assert_eq!(e.kind(), "unsupported_operation");

        let r: BifrostRequest = serde_json::from_value(json!({"provider": "cohere",
            "model": "embed-v4.0", "input": {"embedding": "hello"}, "params": {"dimensions": 256}}))
        .unwrap();
        let body = serde_json::to_value(embed_request(&ProviderKey::Cohere, &r).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"model": "embed-v4.0", "texts": ["hello"], "input_type": "search_document",
                "embedding_types": ["float"], "output_dimension": 256})
        );
        let r: BifrostRequest = serde_json::from_value(json!({"provider": "cohere",
            "model": "embed-v4.0", "input": {"embedding": ["a", "b"]},
            "params": {"input_type": "search_query"}}))
        .unwrap();
        let body = serde_json::to_value(embed_request(&ProviderKey::Cohere, &r).unwrap()).unwrap();
        assert_eq!(body["texts"], json!(["a", "b"]));
        assert_eq!(body["input_type"], "search_query");
    }
}
