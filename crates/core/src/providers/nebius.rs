//! Nebius AI Studio (`nebius`): OpenAI's API (chat, streaming, tools, completions,
//! embeddings, model list) at `https://api.studio.nebius.com`.

use super::openai::{self, Dialect};

/// Nebius AI Studio's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.studio.nebius.com";

/// Nebius's differences from OpenAI: only the URL.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    ..openai::DIALECT
};
