//! OpenRouter (`openrouter`): OpenAI's API under `https://openrouter.ai/api`. Model names
//! carry the upstream vendor (`openrouter/meta-llama/llama-3.1-8b-instruct`), which the
//! request parser keeps whole. OpenRouter's optional attribution headers `HTTP-Referer`
//! and `X-Title` are sent with `network_config.extra_headers` (or per request with
//! `x-bf-eh-http-referer` / `x-bf-eh-x-title`); nothing else differs.

use super::openai::{self, Dialect};

/// OpenRouter's API root.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api";

/// OpenRouter's differences from OpenAI: only the URL.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    ..openai::DIALECT
};
