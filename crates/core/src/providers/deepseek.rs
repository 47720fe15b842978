//! DeepSeek (`deepseek`): OpenAI's chat API at `https://api.deepseek.com`, with these
//! differences:
//!
//! - chat only (streaming, tools, JSON output): no embeddings, and its completion endpoint
//!   (fill-in-the-middle, beta) is not OpenAI's `/v1/completions`;
//! - `max_tokens` only: `max_completion_tokens` is sent as `max_tokens`.

use super::openai::{self, Dialect, Operations};
use crate::schemas::ModelParameters;

/// DeepSeek's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.deepseek.com";

/// DeepSeek's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        text_completion: false,
        embeddings: false,
        ..Operations::ALL
    },
    chat_params,
    ..openai::DIALECT
};

fn chat_params(_model: &str, params: &ModelParameters) -> Option<ModelParameters> {
    openai::legacy_max_tokens(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_only_with_max_tokens() {
        const { assert!(!DIALECT.supports.embeddings && !DIALECT.supports.text_completion) };
        let p = ModelParameters {
            max_completion_tokens: Some(64),
            ..ModelParameters::default()
        };
        let sent = (DIALECT.chat_params)("deepseek-chat", &p).unwrap();
        assert_eq!(sent.max_tokens, Some(64));
        assert_eq!(sent.max_completion_tokens, None);
    }
}
