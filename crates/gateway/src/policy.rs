//! Request validation every transport applies the same way: model routing, the
//! unsupported-parameter policy and which operations may stream.

use bifrost_core::Bifrost;
use bifrost_core::providers::native;
use bifrost_core::schemas::{BifrostError, BifrostRequest, ProviderKey, RequestInput};

/// Response header (and gRPC trailer) listing, comma-separated, the parameters the gateway
/// did not send to the provider: those dropped under `client.drop_unsupported_params`, and
/// hints the provider cannot take that change nothing in the answer (e.g. `cache_control`
/// outside Anthropic).
pub const X_DROPPED_PARAMS: &str = "x-bifrost-dropped-params";

/// `provider/model` → that provider and model (split on the first `/`, as on the native
/// routes); a bare name → `default` with the whole name.
pub fn route_model(model: &str, default: ProviderKey) -> (ProviderKey, String) {
    match model.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => (ProviderKey::parse(p), m.to_owned()),
        _ => (default, model.to_owned()),
    }
}

/// Streaming is offered for chat completions only; anything else asking for a stream is a
/// 400 naming `stream`.
pub fn check_stream(req: &BifrostRequest) -> Result<(), BifrostError> {
    match req.input {
        RequestInput::Chat(_) => Ok(()),
        _ => Err(BifrostError::invalid_param(
            "stream",
            "streaming is supported for chat completions only",
        )),
    }
}

/// What the target provider cannot take, as found by a surface's translation.
#[derive(Debug, Default)]
pub struct Lost {
    /// Parameters or content that would change the answer: refused unless dropping is on.
    pub unsupported: Vec<String>,
    /// Hints that change nothing in the answer: always reported, never refused.
    pub hints: Vec<String>,
}

/// Applies the unsupported-parameter policy to `req` for its primary target.
///
/// `lost` holds what the caller's translation already knows the target cannot take; the
/// unified parameters the target's own translation would leave out are added here
/// ([`native::unsupported_params`]). By default anything unsupported is a 400 naming it;
/// with `client.drop_unsupported_params` those parameters are removed from `req` instead.
/// Returns the names for [`X_DROPPED_PARAMS`] (dropped parameters and hints). A target that
/// is not configured (e.g. one only a plugin answers) is not checked.
pub fn apply_param_policy(
    bifrost: &Bifrost,
    req: &mut BifrostRequest,
    mut lost: Lost,
) -> Result<Vec<String>, BifrostError> {
    let Some(base) = bifrost.base_provider(&req.provider).cloned() else {
        return Ok(Vec::new());
    };
    for p in native::unsupported_params(&base, &req.params) {
        lost.unsupported.push(p.to_owned());
    }
    for p in native::param_hints(&base, &req.params) {
        lost.hints.push(p.to_owned());
    }
    if !lost.unsupported.is_empty() {
        if !bifrost.client_config().drop_unsupported_params {
            let names = lost.unsupported.join(", ");
            let provider = if base == req.provider {
                req.provider.to_string()
            } else {
                format!("{} ({base} API)", req.provider)
            };
            let mut e = BifrostError::invalid_param(
                &lost.unsupported[0],
                format!(
                    "not supported by provider {provider}: {names}; remove it, or set \
                     client.drop_unsupported_params to drop it with a warning header"
                ),
            );
            e.error.code = Some("unsupported_parameter".to_owned());
            return Err(e);
        }
        let names: Vec<&str> = lost.unsupported.iter().map(String::as_str).collect();
        native::strip_params(&mut req.params, &names);
    }
    let mut dropped = lost.unsupported;
    dropped.extend(lost.hints);
    Ok(dropped)
}

/// The [`X_DROPPED_PARAMS`] value for `dropped` (`None` when nothing was dropped), with
/// separators and line breaks inside names replaced so the list stays one header line.
pub fn dropped_header_value(dropped: &[String]) -> Option<String> {
    (!dropped.is_empty()).then(|| {
        dropped
            .iter()
            .map(|d| d.replace([',', '\r', '\n'], " "))
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::{ChatMessage, EmbeddingInput, Role};

    #[test]
    fn models_route_to_their_provider_or_the_default() {
        assert_eq!(
            route_model("gpt-4o-mini", ProviderKey::OpenAI),
            (ProviderKey::OpenAI, "gpt-4o-mini".to_owned())
        );
        assert_eq!(
            route_model("anthropic/claude-3-5-haiku", ProviderKey::OpenAI),
            (ProviderKey::Anthropic, "claude-3-5-haiku".to_owned())
        );
        assert_eq!(
            route_model("openrouter/meta/llama", ProviderKey::Anthropic).1,
            "meta/llama"
        );
        assert_eq!(
            route_model("/x", ProviderKey::Anthropic).0,
            ProviderKey::Anthropic
        );
    }

    #[test]
    fn only_chat_streams() {
        let mut req = BifrostRequest::chat(
            ProviderKey::OpenAI,
            "m",
            vec![ChatMessage::text(Role::User, "hi")],
        );
        assert!(check_stream(&req).is_ok());
        req.input = RequestInput::Embedding(EmbeddingInput::Text("x".into()));
        let e = check_stream(&req).unwrap_err();
        assert_eq!(e.error.param.as_deref(), Some("stream"));
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn dropped_names_stay_one_header_line() {
        assert_eq!(dropped_header_value(&[]), None);
        assert_eq!(
            dropped_header_value(&["a,b".into(), "c\r\n".into()]).as_deref(),
            Some("a b,c  ")
        );
    }
}
