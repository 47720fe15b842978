//! `POST /v1/embeddings`: deterministic vectors derived from an FNV-1a hash
//! of each input, so equal inputs always embed identically.

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::MockState;
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai;

/// Vector length when the request does not ask for `dimensions`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Upper bound on `dimensions`, to keep a bad request from allocating wildly.
const MAX_DIMENSIONS: usize = 16_384;

#[derive(Deserialize)]
struct EmbeddingRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    input: Input,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(borrow, default)]
    encoding_format: Option<Cow<'a, str>>,
    #[serde(default)]
    mock: Option<Value>,
}

/// Every shape OpenAI accepts for `input`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// A vector as JSON floats, or as base64 little-endian f32 (what the OpenAI
/// Python SDK asks for by default).
#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// FNV-1a, 64-bit.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64 step, to spread one hash over many components.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unit-length vector of `dims` components determined by `hash`.
pub(crate) fn vector(hash: u64, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims as u64)
        .map(|i| {
            let bits = splitmix64(hash ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 40;
            #[expect(clippy::cast_precision_loss, reason = "24-bit value fits f32 exactly")]
            let unit = bits as f32 / (1u32 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn base64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// Hash and token count of every input item, in order.
fn items(input: &Input) -> Vec<(u64, u64)> {
    let tokens = |list: &[i64]| -> (u64, u64) {
        (
            fnv1a(list.iter().flat_map(|t| t.to_le_bytes())),
            list.len() as u64,
        )
    };
    match input {
        Input::Text(text) => vec![(fnv1a(text.bytes()), openai::count_tokens(text))],
        Input::Texts(texts) => texts
            .iter()
            .map(|t| (fnv1a(t.bytes()), openai::count_tokens(t)))
            .collect(),
        Input::Tokens(list) => vec![tokens(list)],
        Input::TokenLists(lists) => lists.iter().map(|l| tokens(l)).collect(),
    }
}

/// Handles an embeddings request, faults first.
pub(crate) async fn handle(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let parsed = serde_json::from_slice::<EmbeddingRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate(&state, &parts, &mut faults).await {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let mut resp = match &parsed {
        Ok(request) => respond(request),
        Err(err) => openai::bad_request(err),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

fn respond(request: &EmbeddingRequest<'_>) -> Response {
    let dims = request
        .dimensions
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    let as_base64 = request.encoding_format.as_deref() == Some("base64");
    let items = items(&request.input);
    let prompt_tokens = items.iter().map(|(_, tokens)| tokens).sum();
    let data = items
        .iter()
        .enumerate()
        .map(|(index, (hash, _))| {
            let floats = vector(*hash, dims);
            let embedding = if as_base64 {
                let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64(&bytes))
            } else {
                Vector::Floats(floats)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let list = EmbeddingList {
        object: "list",
        data,
        model: &request.model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    openai::json_response(StatusCode::OK, &list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn vectors_are_deterministic_and_unit_length() {
        let a = vector(fnv1a(*b"hello"), 16);
        assert_eq!(a, vector(fnv1a(*b"hello"), 16));
        assert_ne!(a, vector(fnv1a(*b"world"), 16));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
