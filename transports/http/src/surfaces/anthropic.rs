//! The Anthropic-compatible surface: `base_url = http://host:8080/anthropic`.
//!
//! Routes: `POST /anthropic/v1/messages` (whole or `stream: true`),
//! `POST /anthropic/v1/messages/count_tokens`, `GET /anthropic/v1/models`.
//!
//! A bare model (`claude-…`) goes to the `anthropic` provider; `provider/model` goes to that
//! provider. The body is translated to the unified request ([`reverse::to_unified`]) so
//! plugins, retries and fallbacks apply as on every route, and:
//! - to a provider speaking Anthropic's API, the original body is passed through (see
//!   [`bifrost_core::providers::native`]) and its answer or events are relayed as sent, so
//!   `cache_control`, thinking signatures, server tools and unknown blocks survive;
//! - to any other provider, the unified answer is translated back (an Anthropic `message`,
//!   or stream events from [`reverse::EventEncoder`]). What that provider cannot take is
//!   refused with a 400 naming it, or dropped and named in `x-bifrost-dropped-params` when
//!   `client.drop_unsupported_params` is on; hints (`cache_control`) are always just named.
//!
//! Errors are Anthropic's `{"type":"error","error":{type,message}}` with the HTTP status; a
//! failure inside a stream is an `event: error` and the stream closes without
//! `message_stop`. The SDK's `x-api-key` is accepted and ignored (configured provider keys
//! are used); `anthropic-beta` is forwarded on passthrough. Bifrost's `fallbacks` field
//! (`["provider/model", …]`) is read from the body and never sent upstream.
//!
//! `count_tokens` is answered by Anthropic's own endpoint for Anthropic providers; for any
//! other provider it is an estimate (about four characters per token), marked with
//! `x-bifrost-token-count: estimated`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bifrost_core::RequestContext;
use bifrost_core::providers::anthropic::reverse::{
    self, EventEncoder, Translated, estimate_input_tokens, event_name, to_anthropic_response,
};
use bifrost_core::providers::anthropic::types::{MessagesRequest, StreamEvent};
use bifrost_core::providers::native::{self, NativeDialect, NativeRequest};
use bifrost_core::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, Fallback, ProviderKey, RequestInput,
};
use serde_json::{Map, Value, json};

use super::{Lost, StreamEncoder, add_dropped_header, apply_param_policy, json_ok, route_model};
use crate::app::{
    AppState, Inbound, RequestId, UpstreamTime, add_attempt_headers, body_or_error_in, log_error,
};
use crate::errors::Dialect;

const DIALECT: Dialect = Dialect::Anthropic;

/// Says a `count_tokens` answer is an estimate, not the provider's count.
const X_TOKEN_COUNT: HeaderName = HeaderName::from_static("x-bifrost-token-count");

/// Caller headers forwarded with a passed-through body.
const FORWARDED_HEADERS: &[&str] = &["anthropic-beta"];

/// The `/anthropic` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/anthropic/v1/messages", post(messages))
        .route("/anthropic/v1/messages/count_tokens", post(count_tokens))
        .route("/anthropic/v1/models", get(list_models))
}

/// The Messages routes re-mounted under an integration prefix (`/litellm/v1/messages`, …).
pub fn integration_router(prefix: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{prefix}/v1/messages"), post(messages))
        .route(
            &format!("{prefix}/v1/messages/count_tokens"),
            post(count_tokens),
        )
}

/// A parsed body: the native JSON (gateway fields removed), its typed form, and routing.
struct Incoming {
    native: Map<String, Value>,
    typed: MessagesRequest,
    provider: ProviderKey,
    model: String,
    fallbacks: Vec<Fallback>,
}

fn invalid_body(e: &serde_json::Error) -> BifrostError {
    BifrostError::invalid_request(format!("invalid request body: {e}"))
}

/// Reads the body. `count_tokens` bodies have no `max_tokens`; `default_max_tokens` fills it
/// in the typed copy only.
fn read(body: &[u8], default_max_tokens: Option<u32>) -> Result<Incoming, BifrostError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BifrostError::invalid_request(
            "request body is empty; expected a JSON object",
        ));
    }
    let mut native: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| invalid_body(&e))?;
    let fallbacks = match native.remove("fallbacks") {
        Some(v) => serde_json::from_value::<Vec<Fallback>>(v).map_err(|e| {
            BifrostError::invalid_param("fallbacks", format!("invalid fallbacks: {e}"))
        })?,
        None => Vec::new(),
    };
    let mut typed_map = native.clone();
    if let Some(n) = default_max_tokens {
        typed_map.entry("max_tokens").or_insert(json!(n));
    }
    let typed: MessagesRequest = serde_json::from_value(Value::Object(typed_map)).map_err(|e| {
        let msg = e.to_string();
        match msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((field, _)) => {
                BifrostError::invalid_param(field, format!("{field}: Field required"))
            }
            None => invalid_body(&e),
        }
    })?;
    if typed.model.is_empty() {
        return Err(BifrostError::invalid_param(
            "model",
            "model: Field required",
        ));
    }
    let (provider, model) = route_model(&typed.model, ProviderKey::Anthropic);
    Ok(Incoming {
        native,
        typed,
        provider,
        model,
        fallbacks,
    })
}

/// The unified request, and whether its primary target speaks Anthropic (passthrough).
struct Prepared {
    request: BifrostRequest,
    passthrough: bool,
    dropped: Vec<String>,
    stream: bool,
}

fn prepare(
    st: &AppState,
    incoming: Incoming,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
) -> Result<Prepared, BifrostError> {
    let Incoming {
        native,
        typed,
        provider,
        model,
        fallbacks,
    } = incoming;
    let Translated {
        messages,
        params,
        stream,
        dialect_params,
        untranslatable,
        hints,
    } = reverse::to_unified(typed)?;
    let mut request = BifrostRequest {
        provider,
        model,
        input: RequestInput::Chat(messages),
        params,
        fallbacks,
    };
    let base = st.bifrost.base_provider(&request.provider).cloned();
    let passthrough = base.as_ref() == Some(&ProviderKey::Anthropic);
    let dropped = if passthrough {
        let forwarded = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| {
                let v = headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), v.to_owned()))
            })
            .collect();
        let n = NativeRequest::new(NativeDialect::Anthropic, native, forwarded, &request);
        ctx.extensions.insert(Arc::new(n));
        Vec::new()
    } else {
        let mut lost = Lost {
            unsupported: untranslatable,
            hints,
        };
        if let Some(base) = &base {
            lost.unsupported.extend(
                dialect_params
                    .into_iter()
                    .filter(|p| !native::accepts_anthropic_field(base, p)),
            );
        }
        apply_param_policy(&st.bifrost, &mut request, lost)?
    };
    Ok(Prepared {
        request,
        passthrough,
        dropped,
        stream,
    })
}

async fn messages(State(st): State<AppState>, Inbound { id, headers, body }: Inbound) -> Response {
    let body = match body_or_error_in(DIALECT, body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let incoming = match read(&body, None) {
        Ok(i) => i,
        Err(e) => return DIALECT.error_response(&e),
    };
    drop(body);
    let requested_model = incoming.typed.model.clone();
    let mut ctx = st.context(&id, &headers);
    let prepared = match prepare(&st, incoming, &headers, &mut ctx) {
        Ok(p) => p,
        Err(e) => return DIALECT.error_response(&e),
    };
    // Frees the connection's read buffer while the upstream answers (see `app::inference`).
    drop(headers);
    let Prepared {
        request,
        passthrough,
        dropped,
        stream,
    } = prepared;
    let native = ctx.extensions.get::<Arc<NativeRequest>>().cloned();
    let fallback_id = ctx.request_id.clone();
    if stream {
        return match st.bifrost.chat_completion_stream(&mut ctx, request).await {
            Ok(stream) => {
                let c = stream.context();
                let (retries, fallback, upstream) = (c.retries, c.fallback_index, c.upstream_time);
                let raw = passthrough
                    && native
                        .as_ref()
                        .is_some_and(|n| n.streams_raw_from(stream.provider()));
                let enc = AnthropicEvents {
                    raw,
                    encoder: EventEncoder::new(requested_model, fallback_id),
                };
                let mut resp = super::sse(stream, enc, DIALECT);
                add_attempt_headers(&mut resp, retries, fallback);
                add_dropped_header(&mut resp, &dropped);
                resp.extensions_mut().insert(UpstreamTime(upstream));
                resp
            }
            Err(e) => {
                log_error(&ctx, &e);
                DIALECT.error_response(&e)
            }
        };
    }
    let mut resp = match st.bifrost.chat_completion(&mut ctx, request).await {
        Ok(r) => {
            let raw = native.as_ref().and_then(|n| n.take_whole_bytes(&r));
            let json = match raw {
                Some(raw) => Ok(raw),
                None => {
                    serde_json::to_vec(&to_anthropic_response(&r, &requested_model, &fallback_id))
                }
            };
            match json {
                Ok(json) => json_ok(json),
                Err(e) => DIALECT.http_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    format!("cannot encode response: {e}"),
                ),
            }
        }
        Err(e) => {
            log_error(&ctx, &e);
            DIALECT.error_response(&e)
        }
    };
    add_attempt_headers(&mut resp, ctx.retries, ctx.fallback_index);
    add_dropped_header(&mut resp, &dropped);
    resp.extensions_mut()
        .insert(UpstreamTime(ctx.upstream_time));
    resp
}

/// Anthropic's named SSE events: relayed as the provider sent them on passthrough, encoded
/// from unified chunks otherwise.
struct AnthropicEvents {
    raw: bool,
    encoder: EventEncoder,
}

fn frame(name: &str, data: &impl serde::Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut out, data).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

fn frames(events: &[StreamEvent]) -> Bytes {
    let mut out = Vec::new();
    for e in events {
        out.extend(frame(event_name(e), e));
    }
    Bytes::from(out)
}

impl StreamEncoder for AnthropicEvents {
    fn chunk(&mut self, chunk: &BifrostResponse) -> Result<Bytes, BifrostError> {
        if self.raw
            && let Some(raw) = &chunk.extra_fields.raw_response
        {
            // `native::raw_event`: the event name and data line exactly as received.
            let field = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or_default();
            let (event, data) = (field("event"), field("data"));
            let event = if event.is_empty() { "message" } else { event };
            return Ok(Bytes::from(format!("event: {event}\ndata: {data}\n\n")));
        }
        Ok(frames(&self.encoder.push(chunk)))
    }

    fn finish(&mut self) -> Result<Bytes, BifrostError> {
        if self.raw {
            // The provider's own `message_stop` was relayed already.
            return Ok(Bytes::new());
        }
        Ok(frames(&self.encoder.finish()))
    }
}

async fn count_tokens(
    State(st): State<AppState>,
    Inbound { id, headers, body }: Inbound,
) -> Response {
    let body = match body_or_error_in(DIALECT, body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let incoming = match read(&body, Some(1)) {
        Ok(i) => i,
        Err(e) => return DIALECT.error_response(&e),
    };
    let estimate = estimate_input_tokens(&incoming.typed);
    let base = st.bifrost.base_provider(&incoming.provider).cloned();
    if base != Some(ProviderKey::Anthropic) {
        return estimated(estimate);
    }
    let mut ctx = st.context(&id, &headers);
    let prepared = match prepare(&st, incoming, &headers, &mut ctx) {
        Ok(p) => p,
        Err(e) => return DIALECT.error_response(&e),
    };
    let mut resp = match st.bifrost.count_tokens(&mut ctx, prepared.request).await {
        Ok(count) => {
            let body = count
                .raw
                .unwrap_or_else(|| json!({"input_tokens": count.input_tokens}));
            match serde_json::to_vec(&body) {
                Ok(json) => json_ok(json),
                Err(_) => estimated(estimate),
            }
        }
        Err(e) if e.kind() == "unsupported_operation" => estimated(estimate),
        Err(e) => {
            log_error(&ctx, &e);
            DIALECT.error_response(&e)
        }
    };
    resp.extensions_mut()
        .insert(UpstreamTime(ctx.upstream_time));
    resp
}

fn estimated(tokens: u64) -> Response {
    let mut resp = json_ok(json!({"input_tokens": tokens}).to_string().into_bytes());
    resp.headers_mut()
        .insert(X_TOKEN_COUNT, HeaderValue::from_static("estimated"));
    resp
}

/// `GET /v1/models` in Anthropic's page shape; ids are `provider/model` so they route back.
async fn list_models(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let ctx = st.context(&id, &headers);
    let list = st.bifrost.list_models(&ctx).await;
    let data: Vec<Value> = list
        .data
        .iter()
        .map(|m| {
            json!({"type": "model", "id": m.id, "display_name": m.id,
                   "created_at": rfc3339(m.created)})
        })
        .collect();
    let body = json!({
        "data": data,
        "has_more": false,
        "first_id": list.data.first().map(|m| m.id.as_str()),
        "last_id": list.data.last().map(|m| m.id.as_str()),
    });
    json_ok(body.to_string().into_bytes())
}

/// Unix seconds as an RFC 3339 UTC timestamp (civil-from-days, Howard Hinnant).
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_with_routing_and_fallbacks_removed() {
        let i = read(
            br#"{"model":"claude-3-5-haiku","max_tokens":5,"messages":[],"fallbacks":["openai/gpt-4o-mini"]}"#,
            None,
        )
        .unwrap();
        assert_eq!(i.provider, ProviderKey::Anthropic);
        assert_eq!(i.model, "claude-3-5-haiku");
        assert_eq!(i.fallbacks[0].provider, ProviderKey::OpenAI);
        assert!(!i.native.contains_key("fallbacks"));
        assert!(!i.typed.extra.contains_key("fallbacks"));
        let i = read(br#"{"model":"openai/gpt-4o","messages":[]}"#, Some(1)).unwrap();
        assert_eq!(i.provider, ProviderKey::OpenAI);
        assert!(!i.native.contains_key("max_tokens"));
        let e = read(br#"{"model":"claude","messages":[]}"#, None)
            .err()
            .unwrap();
        assert_eq!(e.error.param.as_deref(), Some("max_tokens"));
        assert!(read(b"", None).is_err());
        assert!(read(b"{nope", None).is_err());
    }

    #[test]
    fn event_frames_are_named() {
        let f = frame("ping", &json!({"type": "ping"}));
        assert_eq!(f, b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_729_555_200), "2024-10-22T00:00:00Z");
    }
}
