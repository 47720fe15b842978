//! AWS Bedrock's runtime API, written from its reference: `POST /model/{modelId}/converse`,
//! `/converse-stream` (a real AWS binary event stream, `application/vnd.amazon.eventstream`,
//! framed with `aws-smithy-eventstream`) and `/invoke` for Titan and Cohere embeddings.
//!
//! Authentication is checked as AWS does: a Bedrock API key (`Authorization: Bearer …`) or a
//! SigV4 header `AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/bedrock/aws4_request,
//! SignedHeaders=…, Signature=<64 hex>` whose signed headers include `host` and `x-amz-date`
//! (and `x-amz-security-token` when sent). For the access key [`BEDROCK_ACCESS_KEY`] the
//! signature itself is recomputed with [`BEDROCK_SECRET_KEY`] and must match. Failures are
//! 403s with AWS's exception names.
//!
//! Replies follow the OpenAI routes (a tool call when tools are offered and the last turn
//! holds no tool result, `tool said: …` after one, else the echo or the `content` fault).
//! Faults are the usual ones, with errors in AWS's shape (`{"message"}` and
//! `x-amzn-errortype`); `x-mock-stream-exception: <name>` makes a stream send that exception
//! (e.g. `throttlingException`) after `messageStart`.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message as Frame};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::MockState;
use crate::chat::{FALLBACK_REPLY, TOOL_ARGUMENTS, TOOL_CALL_ID, TOOL_CALL_TOKENS};
use crate::embeddings::{fnv1a, vector};
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai;
use crate::sse::Sse;

/// The access key whose signatures the mock verifies in full.
pub const BEDROCK_ACCESS_KEY: &str = "AKIDMOCKBEDROCK";
/// Its secret.
pub const BEDROCK_SECRET_KEY: &str = "mock-bedrock-secret";

/// Titan's default vector length.
const TITAN_DIMENSIONS: usize = 8;

/// An AWS error: `{"message"}` plus `x-amzn-errortype`.
fn aws_error(status: StatusCode, exception: &str, message: &str) -> Response {
    let mut resp = openai::json_response(status, &json!({ "message": message }));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// The exception AWS answers with for a status.
fn exception_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// Status faults in AWS's shape.
fn fault_error(status: StatusCode, message: &str, _retry_after: Option<&str>) -> Response {
    aws_error(status, exception_for(status), message)
}

fn validation(message: &str) -> Response {
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

fn denied(exception: &str, message: &str) -> Response {
    aws_error(StatusCode::FORBIDDEN, exception, message)
}

/// Checks the request's authentication; answers the caller's key id (API key or access key).
fn authenticate(parts: &Parts, body: &[u8]) -> Result<String, Response> {
    let Some(auth) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(denied(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return Ok(token.to_owned());
    }
    let incomplete = |why: &str| denied("IncompleteSignatureException", why);
    let Some(fields) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete(
            "Authorization must be AWS4-HMAC-SHA256 or Bearer",
        ));
    };
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed), Some(signature)) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    ) else {
        return Err(incomplete(
            "Authorization needs Credential, SignedHeaders and Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(
            "Credential must be <akid>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if service != "bedrock" || terminator != "aws4_request" || date.len() != 8 {
        return Err(incomplete(
            "Credential scope must be <date>/<region>/bedrock/aws4_request",
        ));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(incomplete("Signature must be 64 lowercase hex digits"));
    }
    let signed: Vec<&str> = signed.split(';').collect();
    let mut required = vec!["host", "x-amz-date"];
    if parts.headers.contains_key("x-amz-security-token") {
        required.push("x-amz-security-token");
    }
    if let Some(missing) = required.iter().find(|h| !signed.contains(h)) {
        return Err(incomplete(&format!("SignedHeaders must include {missing}")));
    }
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !amz_date.starts_with(date) {
        return Err(incomplete("x-amz-date does not match the credential date"));
    }
    if akid == BEDROCK_ACCESS_KEY {
        let expected = resign(parts, body, &signed, region, amz_date)
            .ok_or_else(|| incomplete("cannot recompute the signature"))?;
        if expected != signature {
            return Err(denied(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
    }
    Ok(akid.to_owned())
}

/// The signature AWS would compute for this request with the mock's secret.
fn resign(
    parts: &Parts,
    body: &[u8],
    signed: &[&str],
    region: &str,
    amz_date: &str,
) -> Option<String> {
    let time = parse_amz_date(amz_date)?;
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let url = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let token = parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .filter(|h| !matches!(**h, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|h| Some((*h, parts.headers.get(*h)?.to_str().ok()?)))
        .collect();
    let identity =
        Credentials::new(BEDROCK_ACCESS_KEY, BEDROCK_SECRET_KEY, token, None, "mock").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let req = SignableRequest::new(
        parts.method.as_str(),
        &url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (_, signature) = sign(req, &params).ok()?.into_parts();
    Some(signature)
}

/// `yyyymmddThhmmssZ` → a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Reads the body, runs the faults and checks authentication; the parsed JSON body, the
/// faults' source headers and the caller's key id.
async fn admit(state: &MockState, req: Request) -> Result<(Parts, Value, String), Response> {
    let (parts, body) = req.into_parts();
    let bytes = openai::read_body(body).await?;
    let key = authenticate(&parts, &bytes)?;
    let parsed: Value = serde_json::from_slice(&bytes)
        .map_err(|e| validation(&format!("invalid request body: {e}")))?;
    let mut faults = Faults::parse(&parts.headers, None);
    faults::gate_with(state, &parts, &mut faults, fault_error).await?;
    Ok((parts, parsed, key))
}

fn with_key(mut resp: Response, key: &str, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(key) {
        resp.headers_mut().insert(X_MOCK_API_KEY, v);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// What to answer.
enum Reply {
    Text(String),
    ToolCall(String),
}

/// Checks the Converse body as AWS does (alternating turns starting with a user turn, no
/// empty content) and decides the reply.
fn converse_reply(body: &Value, faults: &Faults<'_>) -> Result<(Reply, u64), Response> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| validation("messages must be a non-empty list"))?;
    let mut expected = "user";
    let mut input = 0;
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str) != Some(expected) {
            return Err(validation(&format!(
                "A conversation must alternate between user and assistant roles (messages.{i})"
            )));
        }
        let content = m.get("content").and_then(Value::as_array);
        if content.is_none_or(Vec::is_empty) {
            return Err(validation(&format!(
                "messages.{i}.content must not be empty"
            )));
        }
        for block in content.into_iter().flatten() {
            if let Some(t) = block.get("text").and_then(Value::as_str) {
                if t.is_empty() {
                    return Err(validation("text content blocks must be non-empty"));
                }
                input += openai::count_tokens(t);
            }
            if (block.get("toolUse").is_some() || block.get("toolResult").is_some())
                && body.pointer("/toolConfig/tools").is_none()
            {
                return Err(validation(
                    "toolConfig field must be defined when using toolUse and toolResult content blocks",
                ));
            }
        }
        expected = if expected == "user" {
            "assistant"
        } else {
            "user"
        };
    }
    let last = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array);
    let tool_result = last.into_iter().flatten().find_map(|b| b.get("toolResult"));
    let tool = body
        .pointer("/toolConfig/tools/0/toolSpec/name")
        .and_then(Value::as_str);
    let reply = match (tool, tool_result) {
        (Some(name), None) => Reply::ToolCall(name.to_owned()),
        _ => match (&faults.content, tool_result) {
            (Some(c), _) => Reply::Text(c.to_string()),
            (None, Some(r)) => {
                let said = r
                    .pointer("/content/0/text")
                    .and_then(Value::as_str)
                    .map_or_else(
                        || {
                            r.pointer("/content/0/json")
                                .map(Value::to_string)
                                .unwrap_or_default()
                        },
                        str::to_owned,
                    );
                Reply::Text(format!("tool said: {said}"))
            }
            (None, None) => Reply::Text(
                last.into_iter()
                    .flatten()
                    .find_map(|b| b.get("text").and_then(Value::as_str))
                    .unwrap_or(FALLBACK_REPLY)
                    .to_owned(),
            ),
        },
    };
    Ok((reply, input))
}

fn usage(input: u64, output: u64) -> Value {
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

/// Handles `POST /model/{modelId}/converse`.
pub(crate) async fn converse(
    State(state): State<MockState>,
    Path(_model): Path<String>,
    req: Request,
) -> Response {
    let (parts, body, key) = match admit(&state, req).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let faults = Faults::parse(&parts.headers, None);
    let (reply, input) = match converse_reply(&body, &faults) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let id = format!("bedrock-mock-{}", state.next_seq());
    let (content, stop, output) = match &reply {
        Reply::Text(t) => (json!([{"text": t}]), "end_turn", openai::count_tokens(t)),
        Reply::ToolCall(name) => (
            json!([{"text": format!("I will call {name}.")}, {"toolUse": {"toolUseId": TOOL_CALL_ID,
                "name": name, "input": serde_json::from_str::<Value>(TOOL_ARGUMENTS).unwrap_or_default()}}]),
            "tool_use",
            TOOL_CALL_TOKENS,
        ),
    };
    let resp = openai::json_response(
        StatusCode::OK,
        &json!({"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop, "usage": usage(input, output), "metrics": {"latencyMs": 1}}),
    );
    with_key(resp, &key, &id)
}

fn frame(kind: &str, payload: &Value) -> Vec<u8> {
    let message = Frame::new(serde_json::to_vec(payload).unwrap_or_default())
        .add_header(Header::new(
            ":event-type",
            FrameValue::String(kind.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            FrameValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            FrameValue::String("event".into()),
        ));
    let mut out = Vec::new();
    // Encoding our own small frames cannot fail.
    let _ = write_message_to(&message, &mut out);
    out
}

fn exception_frame(kind: &str, message: &str) -> Vec<u8> {
    let message =
        Frame::new(serde_json::to_vec(&json!({ "message": message })).unwrap_or_default())
            .add_header(Header::new(
                ":exception-type",
                FrameValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                FrameValue::String("application/json".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                FrameValue::String("exception".into()),
            ));
    let mut out = Vec::new();
    let _ = write_message_to(&message, &mut out);
    out
}

/// Handles `POST /model/{modelId}/converse-stream`.
pub(crate) async fn converse_stream(
    State(state): State<MockState>,
    Path(_model): Path<String>,
    req: Request,
) -> Response {
    let (parts, body, key) = match admit(&state, req).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let faults = Faults::parse(&parts.headers, None);
    let (reply, input) = match converse_reply(&body, &faults) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let id = format!("bedrock-mock-{}", state.next_seq());
    // Bedrock pads events with a random-length `p` field; the mock does too.
    let mut s = Sse::with_capacity(16);
    s.raw(&frame(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefgh"}),
    ));
    if let Some(exception) = parts
        .headers
        .get("x-mock-stream-exception")
        .and_then(|v| v.to_str().ok())
    {
        s.raw(&exception_frame(exception, "mock stream exception"));
        return with_key(event_stream(s, &faults), &key, &id);
    }
    let (stop, output) = match &reply {
        Reply::Text(text) => {
            for piece in openai::split_text(text, faults.chunks) {
                s.raw(&frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": piece}, "p": "ab"}),
                ));
            }
            s.raw(&frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
            ("end_turn", openai::count_tokens(text))
        }
        Reply::ToolCall(name) => {
            s.raw(&frame(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"text": format!("I will call {name}.")}}),
            ));
            s.raw(&frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
            s.raw(&frame(
                "contentBlockStart",
                &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": TOOL_CALL_ID, "name": name}}}),
            ));
            let n = faults.chunks.unwrap_or(3).max(3);
            for piece in openai::split_chars(TOOL_ARGUMENTS, n) {
                s.raw(&frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}),
                ));
            }
            s.raw(&frame("contentBlockStop", &json!({"contentBlockIndex": 1})));
            ("tool_use", TOOL_CALL_TOKENS)
        }
    };
    s.raw(&frame("messageStop", &json!({"stopReason": stop})));
    s.raw(&frame(
        "metadata",
        &json!({"usage": usage(input, output), "metrics": {"latencyMs": 1}}),
    ));
    with_key(event_stream(s, &faults), &key, &id)
}

fn event_stream(s: Sse, faults: &Faults<'_>) -> Response {
    let mut resp = s.into_response(faults);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    resp
}

/// Handles `POST /model/{modelId}/invoke` for Titan and Cohere embedding models.
pub(crate) async fn invoke(
    State(state): State<MockState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    let (_parts, body, key) = match admit(&state, req).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let id = format!("bedrock-mock-{}", state.next_seq());
    if model.contains("titan-embed") {
        let Some(text) = body.get("inputText").and_then(Value::as_str) else {
            return validation("inputText is required");
        };
        let dims = body
            .get("dimensions")
            .and_then(Value::as_u64)
            .map_or(TITAN_DIMENSIONS, |d| {
                usize::try_from(d).unwrap_or(TITAN_DIMENSIONS)
            });
        let resp = openai::json_response(
            StatusCode::OK,
            &json!({"embedding": vector(fnv1a(text.bytes()), dims),
                "inputTextTokenCount": openai::count_tokens(text)}),
        );
        return with_key(resp, &key, &id);
    }
    if model.contains("cohere.embed") {
        let Some(texts) = body.get("texts").and_then(Value::as_array) else {
            return validation("texts is required");
        };
        if body.get("input_type").and_then(Value::as_str).is_none() {
            return validation("input_type is required");
        }
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| vector(fnv1a(t.bytes()), TITAN_DIMENSIONS))
            .collect();
        let tokens: u64 = texts.iter().map(|t| openai::count_tokens(t)).sum();
        let mut resp = openai::json_response(
            StatusCode::OK,
            &json!({"id": id, "response_type": "embeddings_floats", "embeddings": vectors, "texts": texts}),
        );
        if let Ok(v) = HeaderValue::from_str(&tokens.to_string()) {
            resp.headers_mut()
                .insert("x-amzn-bedrock-input-token-count", v);
        }
        return with_key(resp, &key, &id);
    }
    validation(&format!("mock: model {model} has no InvokeModel body here"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse() {
        assert_eq!(
            parse_amz_date("20231114T221320Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(parse_amz_date("2023-11-14"), None);
    }
}
