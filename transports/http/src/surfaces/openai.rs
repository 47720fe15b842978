//! The OpenAI-compatible surface: `base_url = http://host:8080/openai` (or `…/openai/v1`).
//!
//! Routes (each with and without `/v1`, plus Azure's deployment form
//! `/openai/openai/deployments/{deployment}/…`, where the model becomes `azure/<deployment>`):
//! `POST chat/completions` (whole or `stream: true`), `POST completions`, `POST embeddings`,
//! `GET models`, `GET models/{model}`.
//!
//! Bodies are OpenAI's, read by the native parser, so Bifrost's extensions (`fallbacks`,
//! nested `params`) work here too. A bare model name (`gpt-4o-mini`) goes to the `openai`
//! provider; `provider/model` goes to that provider. Answers are OpenAI's shapes (plus
//! Bifrost's `extra_fields`); errors are OpenAI's `{"error":{message,type,param,code}}`, also
//! inside a stream (then the stream closes without `[DONE]`).
//!
//! The SDK's `Authorization: Bearer <key>` is accepted and ignored: requests use the keys
//! configured for the provider (provider keys never come from callers on this route).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bifrost_core::schemas::{BifrostError, ProviderKey};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use bifrost_gateway::policy::check_stream;

use super::{Lost, OpenAIChunks, add_dropped_header, apply_param_policy, json_ok, route_model};
use crate::app::{
    AppState, Inbound, RequestId, UpstreamTime, add_attempt_headers, body_or_error_in, log_error,
};
use crate::errors::Dialect;
use crate::parse::{Route, parse};

const DIALECT: Dialect = Dialect::OpenAI;

/// The `/openai` routes.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for prefix in ["/openai/v1", "/openai"] {
        r = r
            .route(&format!("{prefix}/chat/completions"), post(chat))
            .route(&format!("{prefix}/completions"), post(completions))
            .route(&format!("{prefix}/embeddings"), post(embeddings))
            .route(&format!("{prefix}/models"), get(list_models))
            .route(&format!("{prefix}/models/{{*model}}"), get(get_model));
    }
    r.route(
        "/openai/openai/deployments/{deployment}/chat/completions",
        post(deployment_chat),
    )
    .route(
        "/openai/openai/deployments/{deployment}/completions",
        post(deployment_completions),
    )
    .route(
        "/openai/openai/deployments/{deployment}/embeddings",
        post(deployment_embeddings),
    )
}

/// The OpenAI routes re-mounted under an integration prefix (`/litellm`, …): inference and
/// the model list, at `{prefix}` and `{prefix}/v1`. `models/{model}` is left to the GenAI
/// routes mounted beside them (same path shape).
pub fn integration_router(prefix: &str) -> Router<AppState> {
    let mut r = Router::new();
    for base in [format!("{prefix}/v1"), prefix.to_owned()] {
        r = r
            .route(&format!("{base}/chat/completions"), post(chat))
            .route(&format!("{base}/completions"), post(completions))
            .route(&format!("{base}/embeddings"), post(embeddings))
            .route(&format!("{base}/models"), get(list_models));
    }
    r
}

/// Just enough of a body to see how its model is written.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<&'a str>,
    #[serde(borrow, default)]
    provider: Option<&'a RawValue>,
}

/// Rewrites the body so the native parser routes it: a bare model gets `"provider":"openai"`
/// (spliced in without re-encoding the body); a deployment route sets `azure/<deployment>`.
fn routed_body(body: Bytes, deployment: Option<&str>) -> Result<Bytes, BifrostError> {
    if let Some(deployment) = deployment {
        let mut v: serde_json::Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| BifrostError::invalid_request(format!("invalid request body: {e}")))?;
        v.remove("provider");
        v.insert(
            "model".to_owned(),
            Value::String(format!("{}/{deployment}", ProviderKey::Azure)),
        );
        return serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(|e| BifrostError::invalid_request(format!("invalid request body: {e}")));
    }
    let Ok(peek) = serde_json::from_slice::<Peek<'_>>(&body) else {
        return Ok(body); // the parser reports the error
    };
    let bare = peek.provider.is_none()
        && peek
            .model
            .is_some_and(|m| !m.is_empty() && route_model(m, ProviderKey::OpenAI).1 == m);
    if !bare {
        return Ok(body);
    }
    let Some(open) = body.iter().position(|b| *b == b'{') else {
        return Ok(body);
    };
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(br#""provider":"openai","#);
    out.extend_from_slice(&body[open + 1..]);
    Ok(Bytes::from(out))
}

/// Which OpenAI-shaped route family a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Bifrost's native `/v1` routes: `provider/model` required, errors in Bifrost's shape,
    /// every parameter forwarded as given.
    Native,
    /// The `/openai` drop-in routes: a bare model goes to `openai` (a deployment route to
    /// `azure/<deployment>`), errors in OpenAI's shape, the unsupported-parameter policy.
    OpenAI {
        /// The Azure deployment in the path, if any.
        deployment: Option<String>,
    },
}

impl Flavor {
    fn dialect(&self) -> Dialect {
        match self {
            Self::Native => Dialect::Bifrost,
            Self::OpenAI { .. } => DIALECT,
        }
    }
}

/// The one handler behind every OpenAI-shaped inference route (native and drop-in).
pub(crate) async fn inference(
    st: AppState,
    Inbound { id, headers, body }: Inbound,
    route: Route,
    flavor: Flavor,
) -> Response {
    let dialect = flavor.dialect();
    let body = match body_or_error_in(dialect, body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let parsed = match &flavor {
        Flavor::Native => parse(&body, route),
        Flavor::OpenAI { deployment } => {
            routed_body(body.clone(), deployment.as_deref()).and_then(|b| parse(&b, route))
        }
    };
    drop(body);
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return dialect.error_response(&e),
    };
    let mut request = parsed.request;
    let dropped = match flavor {
        Flavor::Native => Vec::new(),
        Flavor::OpenAI { .. } => {
            match apply_param_policy(&st.bifrost, &mut request, Lost::default()) {
                Ok(d) => d,
                Err(e) => return dialect.error_response(&e),
            }
        }
    };
    let mut ctx = st.context(&id, &headers);
    // The request's bytes (body and header values alike) live in the connection's read
    // buffer; holding any of them while the upstream answers keeps that 8 KiB buffer
    // alive and makes hyper allocate a second one for the connection.
    drop(headers);
    ctx.wire_body = true;
    if parsed.stream {
        if let Err(e) = check_stream(&request) {
            return dialect.error_response(&e);
        }
        return match st.bifrost.chat_completion_stream(&mut ctx, request).await {
            Ok(stream) => {
                let c = stream.context();
                let (retries, fallback, upstream) = (c.retries, c.fallback_index, c.upstream_time);
                let mut resp = super::sse(stream, OpenAIChunks, dialect);
                add_attempt_headers(&mut resp, retries, fallback);
                add_dropped_header(&mut resp, &dropped);
                resp.extensions_mut().insert(UpstreamTime(upstream));
                resp
            }
            Err(e) => {
                log_error(&ctx, &e);
                dialect.error_response(&e)
            }
        };
    }
    let result = match route {
        Route::Chat => st.bifrost.chat_completion(&mut ctx, request).await,
        Route::Text => st.bifrost.text_completion(&mut ctx, request).await,
        Route::Embedding => st.bifrost.embedding(&mut ctx, request).await,
    };
    let mut resp = match result {
        Ok(r) => match r.to_openai_json() {
            Ok(json) => json_ok(json),
            Err(e) => dialect.http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                format!("cannot encode response: {e}"),
            ),
        },
        Err(e) => {
            log_error(&ctx, &e);
            dialect.error_response(&e)
        }
    };
    add_attempt_headers(&mut resp, ctx.retries, ctx.fallback_index);
    add_dropped_header(&mut resp, &dropped);
    resp.extensions_mut()
        .insert(UpstreamTime(ctx.upstream_time));
    resp
}

const PLAIN: Flavor = Flavor::OpenAI { deployment: None };

async fn chat(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Chat, PLAIN).await
}

async fn completions(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Text, PLAIN).await
}

async fn embeddings(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Embedding, PLAIN).await
}

async fn deployment_chat(
    State(st): State<AppState>,
    Path(deployment): Path<String>,
    inbound: Inbound,
) -> Response {
    let flavor = Flavor::OpenAI {
        deployment: Some(deployment),
    };
    inference(st, inbound, Route::Chat, flavor).await
}

async fn deployment_completions(
    State(st): State<AppState>,
    Path(deployment): Path<String>,
    inbound: Inbound,
) -> Response {
    let flavor = Flavor::OpenAI {
        deployment: Some(deployment),
    };
    inference(st, inbound, Route::Text, flavor).await
}

async fn deployment_embeddings(
    State(st): State<AppState>,
    Path(deployment): Path<String>,
    inbound: Inbound,
) -> Response {
    let flavor = Flavor::OpenAI {
        deployment: Some(deployment),
    };
    inference(st, inbound, Route::Embedding, flavor).await
}

async fn list_models(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let ctx = st.context(&id, &headers);
    axum::Json(st.bifrost.list_models(&ctx).await).into_response()
}

/// `GET models/{model}`: the entry of `provider/model` (a bare id is looked up as
/// `openai/<id>`), or OpenAI's 404 `model_not_found`.
async fn get_model(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ctx = st.context(&id, &headers);
    let (provider, name) = route_model(&model, ProviderKey::OpenAI);
    let wanted = format!("{provider}/{name}");
    let list = st.bifrost.list_models(&ctx).await;
    match list
        .data
        .into_iter()
        .find(|m| m.id == wanted || m.id == model)
    {
        Some(m) => axum::Json(m).into_response(),
        None => {
            let mut e =
                BifrostError::invalid_param("model", format!("The model '{model}' does not exist"));
            e.status_code = Some(404);
            e.error.code = Some("model_not_found".to_owned());
            DIALECT.error_response(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(body: &str, deployment: Option<&str>) -> Value {
        let b = routed_body(Bytes::from(body.to_owned()), deployment).unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn bare_models_get_the_openai_provider_and_others_are_untouched() {
        let v = routed(r#" {"model":"gpt-4o-mini","messages":[]}"#, None);
        assert_eq!(v["provider"], "openai");
        assert_eq!(v["model"], "gpt-4o-mini");
        let v = routed(r#"{"model":"anthropic/claude","messages":[]}"#, None);
        assert!(v.get("provider").is_none());
        let v = routed(r#"{"provider":"groq","model":"llama"}"#, None);
        assert_eq!(v["provider"], "groq");
        let v = routed(r#"{"model":"gpt-4o","messages":[]}"#, Some("prod-4o"));
        assert_eq!(v["model"], "azure/prod-4o");
        let p = parse(
            &routed_body(
                Bytes::from_static(
                    br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
                ),
                None,
            )
            .unwrap(),
            Route::Chat,
        )
        .unwrap();
        assert_eq!(p.request.provider, ProviderKey::OpenAI);
        assert_eq!(p.request.model, "gpt-4o-mini");
    }
}
