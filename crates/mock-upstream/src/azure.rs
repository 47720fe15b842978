//! Azure OpenAI's deployment routes, written from its REST reference:
//! `POST /openai/deployments/{deployment}/chat/completions` (also `/completions` and
//! `/embeddings`) and `GET /openai/models`. Every request needs the `api-version` query
//! parameter (400 without it) and the `api-key` header (401 without it); the bodies and
//! answers are OpenAI's, served by the OpenAI handlers with their faults and counters (the
//! `api-key` value is the key counted in the stats).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::{MockState, chat, completions, embeddings, openai};

/// Azure's error body: `{"error": {"code", "message"}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    openai::json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// Rejects what Azure rejects before routing: no `api-version`, no `api-key`.
fn check(req: &Request) -> Result<(), Response> {
    let has_version = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.starts_with("api-version=") && kv.len() > 12)
    });
    if !has_version {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    if !req.headers().contains_key("api-key") {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to missing subscription key. Make sure to include subscription \
             key when making requests to an API.",
        ));
    }
    Ok(())
}

/// `POST /openai/deployments/{deployment}/chat/completions`.
pub(crate) async fn chat(state: State<MockState>, req: Request) -> Response {
    match check(&req) {
        Ok(()) => chat::handle(state, req).await,
        Err(resp) => resp,
    }
}

/// `POST /openai/deployments/{deployment}/completions`.
pub(crate) async fn completions(state: State<MockState>, req: Request) -> Response {
    match check(&req) {
        Ok(()) => completions::handle(state, req).await,
        Err(resp) => resp,
    }
}

/// `POST /openai/deployments/{deployment}/embeddings`.
pub(crate) async fn embeddings(state: State<MockState>, req: Request) -> Response {
    match check(&req) {
        Ok(()) => embeddings::handle(state, req).await,
        Err(resp) => resp,
    }
}

/// `GET /openai/models`.
pub(crate) async fn models(req: Request) -> Response {
    match check(&req) {
        Ok(()) => openai::models().await,
        Err(resp) => resp,
    }
}
