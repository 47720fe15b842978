//! Mistral (`mistral`): OpenAI's chat API at `https://api.mistral.ai`, with these differences:
//!
//! - no legacy text completion endpoint (`/v1/completions`);
//! - `max_tokens` only: `max_completion_tokens` is sent as `max_tokens`;
//! - `tool_choice` takes only strings, so a choice of one function becomes `"any"`
//!   (the model must call a tool).

use serde_json::Value;

use super::openai::{self, Dialect, Operations};
use crate::schemas::ModelParameters;

/// Mistral's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.mistral.ai";

/// Mistral's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        text_completion: false,
        ..Operations::ALL
    },
    chat_params,
    ..openai::DIALECT
};

fn chat_params(_model: &str, params: &ModelParameters) -> Option<ModelParameters> {
    let function_choice = params.tool_choice.as_ref().is_some_and(Value::is_object);
    if params.max_completion_tokens.is_none() && !function_choice {
        return None;
    }
    let mut p = openai::legacy_max_tokens(params).unwrap_or_else(|| params.clone());
    if function_choice {
        p.tool_choice = Some(Value::from("any"));
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renames_max_completion_tokens_and_flattens_tool_choice() {
        let p: ModelParameters = serde_json::from_value(json!({
            "max_completion_tokens": 64, "temperature": 0.1,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }))
        .unwrap();
        let out = serde_json::to_value(chat_params("mistral-small", &p).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"max_tokens": 64, "temperature": 0.1, "tool_choice": "any"})
        );
        let untouched: ModelParameters =
            serde_json::from_value(json!({"max_tokens": 8, "tool_choice": "auto"})).unwrap();
        assert!(chat_params("m", &untouched).is_none());
        const { assert!(!DIALECT.supports.text_completion) };
    }
}
