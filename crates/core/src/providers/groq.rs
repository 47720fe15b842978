//! Groq (`groq`): OpenAI's API under `https://api.groq.com/openai`. Groq offers chat
//! (streaming, tools, vision, JSON mode) and model listing, but no legacy text completion
//! and no embeddings; those fail fast with `unsupported_operation`.

use super::openai::{self, Dialect, Operations};

/// Groq's API root (the OpenAI-compatible surface lives under `/openai`).
pub const DEFAULT_BASE_URL: &str = "https://api.groq.com/openai";

/// Groq's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        text_completion: false,
        embeddings: false,
        ..Operations::ALL
    },
    ..openai::DIALECT
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_only() {
        const {
            assert!(DIALECT.supports.chat && DIALECT.supports.tools && DIALECT.supports.list_models)
        };
        const { assert!(!DIALECT.supports.embeddings && !DIALECT.supports.text_completion) };
        assert_eq!(DIALECT.paths.chat, "/v1/chat/completions");
    }
}
