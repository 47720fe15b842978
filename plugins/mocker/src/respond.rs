//! Building the mock answers: chat / text / embedding responses and errors.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bifrost_core::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Choice, EmbeddingData,
    EmbeddingInput, ErrorBody, ExtraFields, PromptInput, RequestInput, Role, Usage,
};
use serde_json::{Map, Value};

use crate::matching::last_user_text;

/// Message text with optional `{{input}}`, `{{provider}}` and `{{model}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    /// Whether `text` contains `{{` at all, so plain messages skip the scan.
    dynamic: bool,
}

impl Template {
    pub(crate) fn new(text: String) -> Self {
        let dynamic = text.contains("{{");
        Self { text, dynamic }
    }

    /// Fills the placeholders; unknown ones (e.g. Bifrost's `{{faker.*}}`) stay as written.
    pub(crate) fn render(&self, req: &BifrostRequest, input: &str) -> String {
        if !self.dynamic {
            return self.text.clone();
        }
        let mut out = String::with_capacity(self.text.len() + input.len());
        let mut rest = self.text.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                rest = &rest[start..];
                break;
            };
            match after[..end].trim() {
                "input" => out.push_str(input),
                "provider" => out.push_str(req.provider.as_str()),
                "model" => out.push_str(&req.model),
                _ => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Configured token counts; `None` fields are estimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageSpec {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

/// A configured success answer.
#[derive(Debug, Clone)]
pub(crate) struct SuccessContent {
    pub message: Template,
    pub model: Option<String>,
    pub usage: Option<UsageSpec>,
    pub finish_reason: Option<String>,
    pub custom_fields: Option<Map<String, Value>>,
}

impl SuccessContent {
    pub(crate) fn plain(message: &str) -> Self {
        Self {
            message: Template::new(message.to_owned()),
            model: None,
            usage: None,
            finish_reason: None,
            custom_fields: None,
        }
    }
}

/// A configured error answer.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContent {
    pub message: String,
    pub kind: Option<String>,
    pub code: Option<String>,
    pub status: u16,
    pub allow_fallbacks: Option<bool>,
}

/// ~4 characters per token, at least one token for non-empty text.
fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mock_id() -> String {
    let mut id = String::with_capacity(29);
    id.push_str("mock-");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

/// Embedding size when the request does not ask for `dimensions`.
const DEFAULT_EMBEDDING_DIMS: usize = 8;
/// Cap on requested `dimensions`, so a mock cannot be asked to allocate without bound.
const MAX_EMBEDDING_DIMS: usize = 4096;

/// Builds the success answer for `req`, shaped for its operation.
pub(crate) fn success(
    req: &BifrostRequest,
    content: &SuccessContent,
    latency_ms: u64,
) -> BifrostResponse {
    let finish = content.finish_reason.as_deref().unwrap_or("stop");
    let (object, choices, data, prompt_est, completion_est) = match &req.input {
        RequestInput::Chat(messages) => {
            let message = content.message.render(req, &last_user_text(messages));
            let prompt: u64 = messages.iter().map(message_tokens).sum();
            let completion = estimate_tokens(&message);
            let choice = Choice {
                index: 0,
                message: Some(ChatMessage::text(Role::Assistant, message)),
                finish_reason: Some(finish.to_owned()),
                ..Choice::default()
            };
            (
                "chat.completion",
                Some(vec![choice]),
                None,
                prompt,
                completion,
            )
        }
        RequestInput::TextCompletion(prompt) => {
            let prompts: Vec<Cow<'_, str>> = match prompt {
                PromptInput::Text(s) => vec![Cow::Borrowed(s.as_str())],
                PromptInput::Batch(items) if items.is_empty() => vec![Cow::Borrowed("")],
                PromptInput::Batch(items) => items.iter().map(prompt_item_text).collect(),
            };
            let mut prompt_tokens = 0;
            let mut completion_tokens = 0;
            let choices = prompts
                .iter()
                .zip(0..)
                .map(|(p, index)| {
                    let text = content.message.render(req, p);
                    prompt_tokens += estimate_tokens(p);
                    completion_tokens += estimate_tokens(&text);
                    Choice {
                        index,
                        text: Some(text),
                        finish_reason: Some(finish.to_owned()),
                        ..Choice::default()
                    }
                })
                .collect();
            (
                "text_completion",
                Some(choices),
                None,
                prompt_tokens,
                completion_tokens,
            )
        }
        RequestInput::Embedding(input) => {
            let (data, tokens) = embeddings(req, input);
            ("list", None, Some(data), tokens, 0)
        }
    };

    let usage = usage(content.usage, prompt_est, completion_est);
    BifrostResponse {
        id: mock_id(),
        object: object.to_owned(),
        created: now_unix(),
        model: content.model.clone().unwrap_or_else(|| req.model.clone()),
        choices,
        data,
        usage: Some(usage),
        extra_fields: extra_fields(req, latency_ms, content.custom_fields.as_ref()),
        ..BifrostResponse::default()
    }
}

fn extra_fields(
    req: &BifrostRequest,
    latency_ms: u64,
    custom: Option<&Map<String, Value>>,
) -> ExtraFields {
    ExtraFields {
        provider: Some(req.provider.clone()),
        model_requested: Some(req.model.clone()),
        request_type: Some(req.request_type().as_str().to_owned()),
        latency: Some(latency_ms),
        // Bifrost carries `custom_fields` in the raw response slot.
        raw_response: custom.map(|m| Value::Object(m.clone())),
        ..ExtraFields::default()
    }
}

fn message_tokens(m: &ChatMessage) -> u64 {
    match &m.content {
        Some(bifrost_core::schemas::MessageContent::Text(s)) => estimate_tokens(s),
        Some(bifrost_core::schemas::MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .map(estimate_tokens)
            .sum(),
        None => 0,
    }
}

fn prompt_item_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn usage(spec: Option<UsageSpec>, prompt_est: u64, completion_est: u64) -> Usage {
    let spec = spec.unwrap_or_default();
    let prompt_tokens = spec.prompt_tokens.unwrap_or(prompt_est);
    let completion_tokens = spec.completion_tokens.unwrap_or(completion_est);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: spec
            .total_tokens
            .unwrap_or(prompt_tokens + completion_tokens),
        ..Usage::default()
    }
}

/// One deterministic unit vector per input, and the estimated prompt tokens.
fn embeddings(req: &BifrostRequest, input: &EmbeddingInput) -> (Vec<EmbeddingData>, u64) {
    let dims = req
        .params
        .dimensions
        .map_or(DEFAULT_EMBEDDING_DIMS, |d| d as usize)
        .clamp(1, MAX_EMBEDDING_DIMS);
    let texts: Vec<(u64, u64)> = match input {
        EmbeddingInput::Text(s) => vec![(fnv1a(s.as_bytes()), estimate_tokens(s))],
        EmbeddingInput::Texts(v) => v
            .iter()
            .map(|s| (fnv1a(s.as_bytes()), estimate_tokens(s)))
            .collect(),
        EmbeddingInput::Tokens(t) => vec![(hash_tokens(t), t.len() as u64)],
        EmbeddingInput::TokenBatches(b) => {
            b.iter().map(|t| (hash_tokens(t), t.len() as u64)).collect()
        }
    };
    let tokens = texts.iter().map(|(_, n)| n).sum();
    let data = texts
        .iter()
        .zip(0..)
        .map(|(&(seed, _), index)| EmbeddingData {
            index,
            object: "embedding".to_owned(),
            embedding: Value::from(unit_vector(seed, dims)),
        })
        .collect();
    (data, tokens)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hash_tokens(tokens: &[i64]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325, |h, t| {
        t.to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// A pseudo-random unit vector fixed by `seed` (splitmix64), rounded to 6 decimals.
fn unit_vector(mut seed: u64, dims: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..dims)
        .map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.into_iter()
        .map(|x| {
            let x = if norm > 0.0 { x / norm } else { x };
            (x * 1e6).round() / 1e6
        })
        .collect()
}

/// Builds the configured error, attributed to the request's provider like a real upstream
/// failure (so `is_bifrost_error` is false).
pub(crate) fn error(req: &BifrostRequest, content: &ErrorContent) -> BifrostError {
    let mut e = BifrostError::provider(
        content.status,
        ErrorBody {
            kind: content.kind.clone(),
            code: content.code.clone(),
            message: content.message.clone(),
            param: None,
        },
    );
    e.allow_fallbacks = content.allow_fallbacks;
    e.with_origin(&req.provider, &req.model)
}

/// The answer for `default_behavior: "success"`.
pub(crate) fn default_success() -> SuccessContent {
    SuccessContent::plain("Mock plugin default response")
}

/// The answer for `default_behavior: "error"`.
pub(crate) fn default_error() -> ErrorContent {
    ErrorContent {
        message: "Mock plugin default error".to_owned(),
        kind: None,
        code: None,
        status: 500,
        allow_fallbacks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::ProviderKey;

    #[test]
    fn templates_fill_known_placeholders_only() {
        let req = BifrostRequest::chat(ProviderKey::parse("mock"), "echo", vec![]);
        let t =
            Template::new("[{{input}}] {{ provider }}/{{model}} {{faker.name}} {{open".to_owned());
        assert_eq!(t.render(&req, "hi"), "[hi] mock/echo {{faker.name}} {{open");
        assert_eq!(Template::new("plain".into()).render(&req, "x"), "plain");
    }

    #[test]
    fn unit_vectors_are_deterministic_and_normalized() {
        let a = unit_vector(fnv1a(b"hello"), 8);
        assert_eq!(a, unit_vector(fnv1a(b"hello"), 8));
        assert_ne!(a, unit_vector(fnv1a(b"world"), 8));
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }
}
