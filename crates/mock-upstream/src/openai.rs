//! Shared OpenAI wire pieces: usage, errors, content text, splitting replies
//! into stream chunks, and the `/v1/models` and 404 handlers.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest request body accepted (benchmarks may send long prompts).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Ids served by `GET /v1/models`.
const MODELS: [&str; 4] = [
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "mock-model",
];

/// A fixed creation time for listed models, so responses are stable.
const MODELS_CREATED: u64 = 1_700_000_000;

/// Token accounting; "tokens" are whitespace-separated words.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// `stream_options` of chat and text completion requests.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// Whether a stream should end with a usage chunk.
pub(crate) fn include_usage(options: Option<&StreamOptions>) -> bool {
    options.and_then(|o| o.include_usage).unwrap_or(false)
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The mock's token count: whitespace-separated words.
pub(crate) fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Text of a message `content`: the string itself, or the `text` of every
/// part joined with a space; anything else is empty.
pub(crate) fn content_text<'a>(content: Option<&'a RawValue>) -> Cow<'a, str> {
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
    }

    let Some(raw) = content else {
        return Cow::Borrowed("");
    };
    let json = raw.get();
    match json.as_bytes().first() {
        // Borrow when the string has no escapes.
        Some(b'"') => serde_json::from_str::<&'a str>(json)
            .map(Cow::Borrowed)
            .or_else(|_| serde_json::from_str::<String>(json).map(Cow::Owned))
            .unwrap_or_default(),
        Some(b'[') => {
            let parts: Vec<Part<'a>> = serde_json::from_str(json).unwrap_or_default();
            let mut texts = parts.into_iter().filter_map(|p| p.text);
            match (texts.next(), texts.next()) {
                (None, _) => Cow::Borrowed(""),
                (Some(one), None) => one,
                (Some(first), Some(second)) => {
                    let mut joined = first.into_owned();
                    for text in std::iter::once(second).chain(texts) {
                        joined.push(' ');
                        joined.push_str(&text);
                    }
                    Cow::Owned(joined)
                }
            }
        }
        _ => Cow::Borrowed(""),
    }
}

/// Splits `text` into stream pieces.
///
/// With `chunks: Some(n)` there are exactly `n` pieces: whole words grouped
/// evenly when there are at least `n` words, else an even split by character
/// (some pieces may then be empty). Without it, about four word-ish pieces.
pub(crate) fn split_text(text: &str, chunks: Option<usize>) -> Vec<&str> {
    let ends: Vec<usize> = text
        .split_inclusive(char::is_whitespace)
        .scan(0, |end, word| {
            *end += word.len();
            Some(*end)
        })
        .collect();
    let words = ends.len();
    let n = chunks.unwrap_or_else(|| words.clamp(1, 4)).max(1);
    if words >= n {
        let end_of = |group: usize| -> usize {
            let w = group * words / n;
            if w == 0 {
                0
            } else {
                ends.get(w - 1).copied().unwrap_or(text.len())
            }
        };
        (0..n)
            .map(|i| text.get(end_of(i)..end_of(i + 1)).unwrap_or(""))
            .collect()
    } else {
        split_chars(text, n)
    }
}

/// Splits `text` into exactly `n` pieces of (nearly) equal character counts.
pub(crate) fn split_chars(text: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let chars = offsets.len() - 1;
    let at = |piece: usize| {
        offsets
            .get(piece * chars / n)
            .copied()
            .unwrap_or(text.len())
    };
    (0..n)
        .map(|i| text.get(at(i)..at(i + 1)).unwrap_or(""))
        .collect()
}

/// Reads the whole request body, or answers 413 when it is too large.
pub(crate) async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "mock: request body too large or unreadable",
            "invalid_request_error",
            None,
        )
    })
}

/// Serializes `value` as a JSON response.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(_) => {
            let mut resp = Response::new(Body::from("mock: serialization failed"));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI-style `{"error": {...}}` response.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param: None,
            code,
        },
    };
    json_response(status, &body)
}

/// The OpenAI error `type` usually paired with `status`.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

/// A 400 for a body that is not the JSON the route expects.
pub(crate) fn bad_request(err: &serde_json::Error) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        &format!("mock: invalid request body: {err}"),
        "invalid_request_error",
        None,
    )
}

/// A response whose body fails immediately, so hyper aborts the connection
/// instead of completing the message.
pub(crate) fn broken_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "mock: connection reset",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> Model<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            id,
            object: "model",
            created: MODELS_CREATED,
            owned_by: "mock",
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

/// `GET /v1/models`.
pub(crate) async fn models() -> Response {
    let list = ModelList {
        object: "list",
        data: MODELS.iter().map(|id| Model::new(id)).collect(),
    };
    json_response(StatusCode::OK, &list)
}

/// `GET /v1/models/{id}`: every id exists.
pub(crate) async fn model(Path(id): Path<String>) -> Response {
    json_response(StatusCode::OK, &Model::new(&id))
}

/// Any other route: 404 with an OpenAI error body.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("mock: no route for {method} {}", uri.path()),
        "invalid_request_error",
        Some("unknown_url"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_split_is_about_four_word_pieces() {
        let pieces = split_text("one two three four five six seven eight", None);
        assert_eq!(
            pieces,
            ["one two ", "three four ", "five six ", "seven eight"]
        );
        assert_eq!(split_text("hi there", None), ["hi ", "there"]);
        assert_eq!(split_text("", None), [""]);
    }

    #[test]
    fn explicit_chunk_count_is_exact() {
        let text = "a quick brown fox";
        for n in 1..=10 {
            let pieces = split_text(text, Some(n));
            assert_eq!(pieces.len(), n);
            assert_eq!(pieces.concat(), text);
        }
        let pieces = split_chars("héllo", 3);
        assert_eq!(pieces.concat(), "héllo");
    }

    #[test]
    fn content_parts_are_joined() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]"#,
        )
        .unwrap();
        assert_eq!(content_text(Some(&raw)), "a b");
        let raw: Box<RawValue> = serde_json::from_str(r#""plain \"q\"""#).unwrap();
        assert_eq!(content_text(Some(&raw)), "plain \"q\"");
    }
}
