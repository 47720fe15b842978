//! Native passthrough and the unsupported-parameter tables of the drop-in routes.
//!
//! **Passthrough.** A drop-in route (e.g. `/anthropic/v1/messages`) translates the caller's
//! body into the unified request, so plugins, fallbacks and every other provider work as
//! usual. When the request then reaches a provider that speaks the caller's own dialect, a
//! translation round trip would lose what the unified schema cannot hold (`cache_control`,
//! thinking signatures, server tools, unknown block types). So the route also leaves the
//! original body in [`RequestContext::extensions`](crate::RequestContext) as an
//! `Arc<NativeRequest>`; the engine hands it to the provider in
//! [`CallOptions::native`](super::CallOptions), and a provider of that dialect sends the
//! original body (with the attempt's model) instead of its own translation, then leaves the
//! provider's raw answer here for the route to return as is.
//!
//! The original body is used only while the unified request still says what the caller
//! sent: a plugin that rewrote the messages or parameters gets its rewrite translated, not
//! ignored. A raw whole answer is returned only if no plugin changed the parsed answer
//! either ([`NativeRequest::take_whole`]).
//!
//! **Unsupported parameters.** [`unsupported_params`] names the unified parameters a
//! provider's translation cannot send and that would change the answer; [`param_hints`]
//! names those it leaves out that change nothing in the answer. Routes refuse the former with
//! a 400 naming them (or drop them and say so in a header, when
//! `client.drop_unsupported_params` is on) and always report the latter.

use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::schemas::{BifrostRequest, BifrostResponse, ModelParameters, ProviderKey, RequestInput};

/// The wire dialect of a native body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeDialect {
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (`generateContent`, `countTokens` bodies; the model stays in the
    /// URL, so the Gemini provider removes the `model` that [`NativeRequest::body_for`] sets).
    Gemini,
}

/// The caller's original body, kept beside its unified translation (see the module docs).
#[derive(Debug)]
pub struct NativeRequest {
    dialect: NativeDialect,
    body: Map<String, Value>,
    headers: Vec<(String, String)>,
    /// The translation as the route made it, to notice a plugin's rewrite.
    input: RequestInput,
    params: ModelParameters,
    answer: Mutex<Answer>,
}

/// A raw answer as the provider kept it.
#[derive(Debug)]
enum Raw {
    Json(Value),
    Bytes(Vec<u8>),
}

#[derive(Debug, Default)]
struct Answer {
    /// A whole raw answer and the unified response parsed from it.
    whole: Option<(Raw, BifrostResponse)>,
    /// The provider whose stream chunks carry raw events in `extra_fields.raw_response`.
    stream_from: Option<ProviderKey>,
}

impl NativeRequest {
    /// Keeps `body` (without the gateway's own fields, which the route removes) and the
    /// dialect headers to forward (e.g. `anthropic-beta`), next to `req`, its translation.
    pub fn new(
        dialect: NativeDialect,
        body: Map<String, Value>,
        headers: Vec<(String, String)>,
        req: &BifrostRequest,
    ) -> Self {
        Self {
            dialect,
            body,
            headers,
            input: req.input.clone(),
            params: req.params.clone(),
            answer: Mutex::new(Answer::default()),
        }
    }

    /// The body to send for `req` in `dialect`, with `req`'s model: `None` when the dialect
    /// differs or a plugin changed the request since the route translated it.
    pub fn body_for(
        &self,
        dialect: NativeDialect,
        req: &BifrostRequest,
    ) -> Option<Map<String, Value>> {
        if dialect != self.dialect || req.input != self.input || req.params != self.params {
            return None;
        }
        let mut body = self.body.clone();
        body.insert("model".to_owned(), Value::String(req.model.clone()));
        Some(body)
    }

    /// Dialect headers of the caller to forward with a passed-through body.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Called by the provider: the raw whole answer (as JSON) and what it parsed from it.
    pub fn record_whole(&self, raw: Value, parsed: &BifrostResponse) {
        self.record(Raw::Json(raw), parsed);
    }

    /// Called by the provider: the raw whole answer as the bytes it received, so the route
    /// can return them byte for byte, and what it parsed from them.
    pub fn record_whole_bytes(&self, raw: Vec<u8>, parsed: &BifrostResponse) {
        self.record(Raw::Bytes(raw), parsed);
    }

    fn record(&self, raw: Raw, parsed: &BifrostResponse) {
        if let Ok(mut a) = self.answer.lock() {
            a.whole = Some((raw, parsed.clone()));
        }
    }

    /// The raw answer, if `final_response` is still exactly what the provider parsed from it
    /// (Bifrost's `extra_fields` aside): no plugin changed it and no fallback answered.
    pub fn take_whole(&self, final_response: &BifrostResponse) -> Option<Value> {
        match self.take_raw(final_response)? {
            Raw::Json(v) => Some(v),
            Raw::Bytes(b) => serde_json::from_slice(&b).ok(),
        }
    }

    /// Like [`take_whole`](Self::take_whole), as bytes (exactly as received when the
    /// provider recorded bytes).
    pub fn take_whole_bytes(&self, final_response: &BifrostResponse) -> Option<Vec<u8>> {
        match self.take_raw(final_response)? {
            Raw::Json(v) => serde_json::to_vec(&v).ok(),
            Raw::Bytes(b) => Some(b),
        }
    }

    fn take_raw(&self, final_response: &BifrostResponse) -> Option<Raw> {
        let mut a = self.answer.lock().ok()?;
        let (raw, parsed) = a.whole.take()?;
        let same = parsed.id == final_response.id
            && parsed.model == final_response.model
            && parsed.choices == final_response.choices
            && parsed.usage == final_response.usage;
        same.then_some(raw)
    }

    /// Called by the provider: its stream chunks carry the raw events, each as
    /// `{"event": <SSE event name>, "data": <the data line, verbatim>}` (see [`raw_event`]).
    pub fn record_stream(&self, provider: &ProviderKey) {
        if let Ok(mut a) = self.answer.lock() {
            a.stream_from = Some(provider.clone());
        }
    }

    /// Whether the chunks of `provider`'s stream carry raw events to pass on.
    pub fn streams_raw_from(&self, provider: &ProviderKey) -> bool {
        self.answer
            .lock()
            .ok()
            .is_some_and(|a| a.stream_from.as_ref() == Some(provider))
    }
}

/// A raw stream event as carried in a chunk's `extra_fields.raw_response` on passthrough:
/// the SSE event name and the data line exactly as the provider sent them.
pub fn raw_event(event: &str, data: &str) -> Value {
    let mut m = Map::new();
    m.insert("event".to_owned(), Value::String(event.to_owned()));
    m.insert("data".to_owned(), Value::String(data.to_owned()));
    Value::Object(m)
}

/// Unified parameters that a provider of base type `base` cannot send and that would change
/// the answer, e.g. `seed` for Anthropic. Their translations leave them out (so that an
/// OpenAI-shaped request can still fall back there); the drop-in routes refuse or report them.
pub fn unsupported_params(base: &ProviderKey, p: &ModelParameters) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |present: bool, name: &'static str| {
        if present {
            out.push(name);
        }
    };
    let no_parallel = p.parallel_tool_calls == Some(false) && p.tools.is_some();
    match base {
        ProviderKey::Anthropic => {
            check(p.seed.is_some(), "seed");
            check(p.presence_penalty.is_some(), "presence_penalty");
            check(p.frequency_penalty.is_some(), "frequency_penalty");
            check(p.logit_bias.is_some(), "logit_bias");
            check(p.logprobs == Some(true), "logprobs");
            check(p.top_logprobs.is_some(), "top_logprobs");
        }
        ProviderKey::Gemini => {
            check(p.logit_bias.is_some(), "logit_bias");
            check(no_parallel, "parallel_tool_calls");
        }
        ProviderKey::Bedrock => {
            check(p.n.is_some_and(|n| n > 1), "n");
            check(p.seed.is_some(), "seed");
            check(p.presence_penalty.is_some(), "presence_penalty");
            check(p.frequency_penalty.is_some(), "frequency_penalty");
            check(p.logit_bias.is_some(), "logit_bias");
            check(p.logprobs == Some(true), "logprobs");
            check(p.top_logprobs.is_some(), "top_logprobs");
            check(no_parallel, "parallel_tool_calls");
        }
        ProviderKey::Cohere => {
            check(p.n.is_some_and(|n| n > 1), "n");
            check(p.logit_bias.is_some(), "logit_bias");
            check(p.top_logprobs.is_some(), "top_logprobs");
            check(no_parallel, "parallel_tool_calls");
        }
        _ => {}
    }
    out
}

/// Unified parameters a provider of base type `base` leaves out that change nothing in the
/// answer (e.g. `user` at Gemini); reported, never refused.
pub fn param_hints(base: &ProviderKey, p: &ModelParameters) -> Vec<&'static str> {
    match base {
        ProviderKey::Gemini | ProviderKey::Cohere | ProviderKey::Bedrock if p.user.is_some() => {
            vec!["user"]
        }
        _ => Vec::new(),
    }
}

/// Removes the named unified parameters (those [`unsupported_params`] listed).
pub fn strip_params(p: &mut ModelParameters, names: &[&str]) {
    for name in names {
        match *name {
            "seed" => p.seed = None,
            "presence_penalty" => p.presence_penalty = None,
            "frequency_penalty" => p.frequency_penalty = None,
            "logit_bias" => p.logit_bias = None,
            "logprobs" => p.logprobs = None,
            "top_logprobs" => p.top_logprobs = None,
            "parallel_tool_calls" => p.parallel_tool_calls = None,
            "n" => p.n = None,
            "user" => p.user = None,
            other => {
                p.extra.remove(other);
            }
        }
    }
}

/// Whether a provider of base type `base` takes the Anthropic-only top-level field `name`
/// (carried in `params.extra`): Anthropic takes them all; Gemini and Cohere map `top_k`.
pub fn accepts_anthropic_field(base: &ProviderKey, name: &str) -> bool {
    match base {
        ProviderKey::Anthropic => true,
        ProviderKey::Gemini | ProviderKey::Cohere | ProviderKey::Bedrock => name == "top_k",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{ChatMessage, Role};
    use serde_json::json;

    fn request() -> BifrostRequest {
        BifrostRequest::chat(
            ProviderKey::Anthropic,
            "claude",
            vec![ChatMessage::text(Role::User, "hi")],
        )
    }

    #[test]
    fn body_is_used_only_while_the_request_is_unchanged() {
        let mut body = Map::new();
        body.insert("model".into(), json!("claude-original"));
        body.insert("cache_marker".into(), json!(1));
        let req = request();
        let n = NativeRequest::new(NativeDialect::Anthropic, body, Vec::new(), &req);
        let mut fallback = req.clone();
        fallback.model = "claude-other".into();
        let b = n.body_for(NativeDialect::Anthropic, &fallback).unwrap();
        assert_eq!(b["model"], "claude-other");
        assert_eq!(b["cache_marker"], 1);
        let mut rewritten = req.clone();
        rewritten.params.temperature = Some(0.1);
        assert!(n.body_for(NativeDialect::Anthropic, &rewritten).is_none());
    }

    #[test]
    fn raw_answer_only_when_unchanged() {
        let n = NativeRequest::new(NativeDialect::Anthropic, Map::new(), Vec::new(), &request());
        let parsed = BifrostResponse {
            id: "msg_1".into(),
            ..BifrostResponse::default()
        };
        n.record_whole_bytes(b"{\"id\": \"msg_1\"}".to_vec(), &parsed);
        let mut answered = parsed.clone();
        answered.extra_fields.provider = Some(ProviderKey::Anthropic);
        assert_eq!(
            n.take_whole_bytes(&answered).as_deref(),
            Some(&b"{\"id\": \"msg_1\"}"[..])
        );
        n.record_whole(json!({"id": "msg_1"}), &parsed);
        assert_eq!(n.take_whole(&answered), Some(json!({"id": "msg_1"})));
        n.record_whole(json!({}), &parsed);
        answered.id = "changed".into();
        assert_eq!(n.take_whole(&answered), None);
        assert!(!n.streams_raw_from(&ProviderKey::Anthropic));
        n.record_stream(&ProviderKey::Anthropic);
        assert!(n.streams_raw_from(&ProviderKey::Anthropic));
        assert!(!n.streams_raw_from(&ProviderKey::OpenAI));
    }

    #[test]
    fn unsupported_tables() {
        let mut p: ModelParameters = serde_json::from_value(json!({
            "seed": 1, "logit_bias": {"1": 2}, "user": "u", "temperature": 0.5,
            "parallel_tool_calls": false, "tools": []
        }))
        .unwrap();
        assert_eq!(
            unsupported_params(&ProviderKey::Anthropic, &p),
            ["seed", "logit_bias"]
        );
        assert_eq!(
            unsupported_params(&ProviderKey::Gemini, &p),
            ["logit_bias", "parallel_tool_calls"]
        );
        assert!(unsupported_params(&ProviderKey::OpenAI, &p).is_empty());
        assert_eq!(
            unsupported_params(&ProviderKey::Bedrock, &p),
            ["seed", "logit_bias", "parallel_tool_calls"]
        );
        assert_eq!(param_hints(&ProviderKey::Bedrock, &p), ["user"]);
        assert_eq!(param_hints(&ProviderKey::Gemini, &p), ["user"]);
        assert!(param_hints(&ProviderKey::Anthropic, &p).is_empty());
        strip_params(&mut p, &["seed", "logit_bias"]);
        assert!(unsupported_params(&ProviderKey::Anthropic, &p).is_empty());
        assert_eq!(p.temperature, Some(0.5));
        assert!(accepts_anthropic_field(&ProviderKey::Gemini, "top_k"));
        assert!(!accepts_anthropic_field(&ProviderKey::OpenAI, "top_k"));
        assert!(!accepts_anthropic_field(&ProviderKey::Gemini, "thinking"));
    }
}
