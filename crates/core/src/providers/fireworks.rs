//! Fireworks AI (`fireworks`): OpenAI's API (chat, streaming, tools, completions,
//! embeddings, model list) under `https://api.fireworks.ai/inference`; models are named by
//! path (`accounts/fireworks/models/llama-v3p1-8b-instruct`), which `provider/model`
//! routing keeps whole (`fireworks/accounts/fireworks/models/…`).

use super::openai::{self, Dialect};

/// Fireworks's API root (the OpenAI-compatible surface lives under `/inference`).
pub const DEFAULT_BASE_URL: &str = "https://api.fireworks.ai/inference";

/// Fireworks's differences from OpenAI: only the URL.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    ..openai::DIALECT
};
