//! Ollama (`ollama`): a local server speaking OpenAI's API at `http://localhost:11434/v1`
//! (chat, streaming, tools, vision, JSON output, completions, embeddings, model list).
//! It needs no key: the provider may be configured with `"keys": []` (see
//! [`ProviderKey::is_keyless`](crate::schemas::ProviderKey::is_keyless)); a configured key is
//! still sent as a bearer token, for Ollama behind an authenticating proxy.

use super::openai::{self, Dialect};

/// Ollama's default local address.
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// Ollama's differences from OpenAI: only the URL (and no key, handled by the engine).
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    ..openai::DIALECT
};
