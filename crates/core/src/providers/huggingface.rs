//! Hugging Face (`huggingface`): the Inference Providers router at
//! `https://router.huggingface.co`, OpenAI's chat API (streaming, tools) for models named
//! `org/model[:provider]`. The router offers chat only through this API: completions and
//! embeddings fail fast with `unsupported_operation`.

use super::openai::{self, Dialect, Operations};

/// The Hugging Face router's root.
pub const DEFAULT_BASE_URL: &str = "https://router.huggingface.co";

/// Hugging Face's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        text_completion: false,
        embeddings: false,
        ..Operations::ALL
    },
    ..openai::DIALECT
};
