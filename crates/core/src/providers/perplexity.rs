//! Perplexity (`perplexity`): an OpenAI-style chat API at `https://api.perplexity.ai`, with
//! these differences:
//!
//! - chat is served at `/chat/completions`, without the `/v1` segment (models stay at
//!   `/v1/models`);
//! - chat only: no tools, no embeddings, no legacy text completion (all fail fast with
//!   `unsupported_operation`, so fallbacks can take over);
//! - `max_tokens` only: `max_completion_tokens` is sent as `max_tokens`;
//! - usage reports `reasoning_tokens` at the top level; it is moved to
//!   `completion_tokens_details.reasoning_tokens`.
//!
//! Perplexity-only request fields (`search_mode`, `search_domain_filter`,
//! `search_recency_filter`, `return_images`, `web_search_options`, …) pass through unchanged.
//! Its response-only fields (`citations`, `search_results`) are kept in
//! `extra_fields.raw_response` when `send_back_raw_response` is on.

use serde::Deserialize;

use super::openai::{self, Dialect, Operations, Paths};
use crate::schemas::{BifrostError, BifrostResponse, CompletionTokensDetails};

/// Perplexity's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.perplexity.ai";

/// Perplexity's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    paths: Paths {
        chat: "/chat/completions",
        ..openai::DIALECT.paths
    },
    supports: Operations {
        tools: false,
        text_completion: false,
        embeddings: false,
        ..Operations::ALL
    },
    chat_params: |_, params| openai::legacy_max_tokens(params),
    parse_body: Some(parse_body),
    parse_chunk,
    ..openai::DIALECT
};

#[derive(Deserialize)]
struct UsageExtras {
    usage: Option<ReasoningUsage>,
}

#[derive(Deserialize)]
struct ReasoningUsage {
    reasoning_tokens: Option<u64>,
}

/// Copies Perplexity's top-level `usage.reasoning_tokens` into OpenAI's place for it.
fn move_reasoning_tokens(raw: &[u8], out: &mut BifrostResponse) {
    // Cheap test first: most bodies and chunks carry no such field.
    if !raw.windows(16).any(|w| w == b"reasoning_tokens") {
        return;
    }
    let Ok(UsageExtras {
        usage: Some(ReasoningUsage {
            reasoning_tokens: Some(n),
        }),
    }) = serde_json::from_slice(raw)
    else {
        return;
    };
    if let Some(u) = out.usage.as_mut() {
        u.completion_tokens_details
            .get_or_insert_with(CompletionTokensDetails::default)
            .reasoning_tokens
            .get_or_insert(n);
    }
}

fn parse_body(raw: &[u8]) -> Result<BifrostResponse, serde_json::Error> {
    let mut out = openai::parse_body(raw)?;
    move_reasoning_tokens(raw, &mut out);
    Ok(out)
}

fn parse_chunk(data: &str) -> Result<BifrostResponse, BifrostError> {
    let mut out = openai::parse_chunk(data)?;
    move_reasoning_tokens(data.as_bytes(), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_path_has_no_version_and_reasoning_tokens_move() {
        assert_eq!(DIALECT.paths.chat, "/chat/completions");
        assert_eq!(DIALECT.paths.models, "/v1/models");
        let body = json!({"id": "p1", "object": "chat.completion", "created": 1, "model": "sonar",
            "citations": ["https://example.com"],
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11,
                "reasoning_tokens": 7, "citation_tokens": 3}});
        let r = parse_body(body.to_string().as_bytes()).unwrap();
        let u = r.usage.unwrap();
        assert_eq!(
            u.completion_tokens_details.unwrap().reasoning_tokens,
            Some(7)
        );
        let chunk =
            parse_chunk(r#"{"id":"p1","choices":[{"index":0,"delta":{"content":"h"}}]}"#).unwrap();
        assert_eq!(chunk.first_text().as_deref(), Some("h"));
    }

    #[test]
    fn renames_max_completion_tokens() {
        let p: crate::schemas::ModelParameters =
            serde_json::from_value(json!({"max_completion_tokens": 5})).unwrap();
        let out = serde_json::to_value((DIALECT.chat_params)("sonar", &p).unwrap()).unwrap();
        assert_eq!(out, json!({"max_tokens": 5}));
        const { assert!(!DIALECT.supports.tools) };
    }
}
