//! Request bodies of every Bifrost era → [`BifrostRequest`].
//!
//! Accepted: `"model":"provider/model"` (v1.2+) or a separate `"provider"` (v1.0); fallbacks as
//! strings or objects; parameters flattened at top level or nested under `"params"`. Every
//! top-level key not named here is kept as an extra parameter and forwarded to the provider.

use bifrost_core::schemas::{
    BifrostError, BifrostRequest, ChatMessage, EmbeddingInput, Fallback, ModelParameters,
    PromptInput, ProviderKey, RequestInput,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The body of any inference route.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    messages: Option<Vec<ChatMessage>>,
    /// Text completion prompt (OpenAI's name).
    #[serde(default)]
    prompt: Option<PromptInput>,
    /// Text completion prompt (Bifrost v1.0's name).
    #[serde(default)]
    text: Option<PromptInput>,
    #[serde(default)]
    input: Option<EmbeddingInput>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_format: Option<String>,
    #[serde(default)]
    fallbacks: Vec<Fallback>,
    #[serde(default)]
    params: Option<Map<String, Value>>,
    #[serde(flatten)]
    flat: ModelParameters,
}

/// Which route the body came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`, `/v1/text/completions`.
    Text,
    /// `/v1/embeddings`.
    Embedding,
}

/// A parsed request and whether the caller asked for a stream.
pub struct Parsed {
    /// The unified request.
    pub request: BifrostRequest,
    /// `stream: true` or `stream_format: "sse"`.
    pub stream: bool,
}

/// Parses and validates a body; errors are 400s naming the field.
pub fn parse(bytes: &[u8], route: Route) -> Result<Parsed, BifrostError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BifrostError::invalid_request(
            "request body is empty; expected a JSON object",
        ));
    }
    let body: Body = serde_json::from_slice(bytes)
        .map_err(|e| BifrostError::invalid_request(format!("invalid request body: {e}")))?;
    let model = body
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| BifrostError::invalid_param("model", "model is required"))?;
    let (provider, model) = match body.provider.filter(|p| !p.is_empty()) {
        Some(p) => (ProviderKey::parse(&p), model),
        None => match model.split_once('/') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => (ProviderKey::parse(p), m.to_owned()),
            _ => {
                return Err(BifrostError::invalid_param(
                    "model",
                    format!(
                        "model must be in the format 'provider/model' (e.g. openai/gpt-4o-mini), got {model:?}"
                    ),
                ));
            }
        },
    };
    let input = match route {
        Route::Chat => RequestInput::Chat(body.messages.ok_or_else(|| {
            BifrostError::invalid_param(
                "messages",
                "messages array is required for chat completion",
            )
        })?),
        Route::Text => {
            RequestInput::TextCompletion(body.prompt.or(body.text).ok_or_else(|| {
                BifrostError::invalid_param("prompt", "prompt is required for text completion")
            })?)
        }
        Route::Embedding => RequestInput::Embedding(body.input.ok_or_else(|| {
            BifrostError::invalid_param("input", "input is required for embeddings")
        })?),
    };
    let params = match body.params {
        Some(nested) if !nested.is_empty() => merge_params(body.flat, nested)?,
        _ => body.flat,
    };
    let stream = body.stream.unwrap_or(false) || body.stream_format.as_deref() == Some("sse");
    Ok(Parsed {
        request: BifrostRequest {
            provider,
            model,
            input,
            params,
            fallbacks: body.fallbacks,
        },
        stream,
    })
}

/// Merges v1.0's nested `params` into the flattened ones; top-level values win.
fn merge_params(
    flat: ModelParameters,
    nested: Map<String, Value>,
) -> Result<ModelParameters, BifrostError> {
    let encode = |e: serde_json::Error| {
        BifrostError::invalid_param("params", format!("invalid params: {e}"))
    };
    let mut merged = nested;
    if let Value::Object(top) = serde_json::to_value(flat).map_err(encode)? {
        merged.extend(top);
    }
    serde_json::from_value(Value::Object(merged)).map_err(encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(v: Value) -> Result<Parsed, BifrostError> {
        parse(&serde_json::to_vec(&v).unwrap(), Route::Chat)
    }

    #[test]
    fn every_era_parses_to_the_same_request() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let v12 = chat(
            json!({"model": "openai/gpt-4o-mini", "messages": msgs, "temperature": 0.3,
            "fallbacks": ["anthropic/claude-3-haiku"]}),
        )
        .unwrap();
        let v10 = chat(json!({"provider": "openai", "model": "gpt-4o-mini", "messages": msgs,
            "params": {"temperature": 0.3}, "fallbacks": [{"provider": "anthropic", "model": "claude-3-haiku"}]}))
        .unwrap();
        assert_eq!(v12.request, v10.request);
        assert_eq!(v12.request.provider, ProviderKey::OpenAI);
        assert_eq!(v12.request.params.temperature, Some(0.3));
    }

    #[test]
    fn unknown_keys_are_forwarded_and_stream_flag_is_not() {
        let p = chat(
            json!({"model": "openrouter/meta/llama", "messages": [{"role":"user","content":"x"}],
            "stream": true, "top_k": 5, "mock": {"status": 429}}),
        )
        .unwrap();
        assert!(p.stream);
        assert_eq!(p.request.model, "meta/llama");
        assert_eq!(p.request.params.extra.get("top_k"), Some(&json!(5)));
        assert_eq!(
            p.request.params.extra.get("mock"),
            Some(&json!({"status": 429}))
        );
        assert!(!p.request.params.extra.contains_key("stream"));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let e = |v: Value| chat(v).err().unwrap();
        assert_eq!(
            e(json!({"messages": []})).error.param.as_deref(),
            Some("model")
        );
        assert_eq!(
            e(json!({"model": "gpt-4o"})).error.param.as_deref(),
            Some("model")
        );
        assert_eq!(
            e(json!({"model": "openai/gpt-4o"})).error.param.as_deref(),
            Some("messages")
        );
        assert!(
            e(json!({"model": "openai/x", "messages": "nope"}))
                .error
                .message
                .contains("invalid request body")
        );
        assert!(parse(b"{not json", Route::Chat).is_err());
        assert!(parse(b"", Route::Chat).is_err());
        let t = parse(br#"{"model":"openai/x","text":"hello"}"#, Route::Text).unwrap();
        assert!(matches!(
            t.request.input,
            RequestInput::TextCompletion(PromptInput::Text(_))
        ));
        assert!(parse(br#"{"model":"openai/x"}"#, Route::Embedding).is_err());
    }
}
