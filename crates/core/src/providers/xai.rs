//! xAI (`xai`): OpenAI's API at `https://api.x.ai`, with these differences:
//!
//! - no embeddings;
//! - reasoning models (`grok-3-mini*`, `grok-4*`, except `*non-reasoning*` variants) reject
//!   `presence_penalty`, `frequency_penalty` and `stop`, and `grok-4*` also rejects
//!   `reasoning_effort`; those parameters are dropped for them rather than failing the request.

use super::openai::{self, Dialect, Operations};
use crate::schemas::ModelParameters;

/// xAI's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.x.ai";

/// xAI's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        embeddings: false,
        ..Operations::ALL
    },
    chat_params,
    ..openai::DIALECT
};

/// Whether `model` is a Grok reasoning model.
fn is_reasoning_model(model: &str) -> bool {
    (model.starts_with("grok-3-mini") || model.starts_with("grok-4"))
        && !model.contains("non-reasoning")
}

fn chat_params(model: &str, params: &ModelParameters) -> Option<ModelParameters> {
    if !is_reasoning_model(model) {
        return None;
    }
    let drop_effort = model.starts_with("grok-4") && params.extra.contains_key("reasoning_effort");
    if params.presence_penalty.is_none()
        && params.frequency_penalty.is_none()
        && params.stop.is_none()
        && !drop_effort
    {
        return None;
    }
    let mut p = params.clone();
    p.presence_penalty = None;
    p.frequency_penalty = None;
    p.stop = None;
    if drop_effort {
        p.extra.remove("reasoning_effort");
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasoning_models_lose_the_parameters_they_reject() {
        let p: ModelParameters = serde_json::from_value(json!({
            "presence_penalty": 0.5, "frequency_penalty": 0.5, "stop": ["x"],
            "reasoning_effort": "high", "temperature": 0.3
        }))
        .unwrap();
        let out = serde_json::to_value(chat_params("grok-4-0709", &p).unwrap()).unwrap();
        assert_eq!(out, json!({"temperature": 0.3}));
        let mini = serde_json::to_value(chat_params("grok-3-mini", &p).unwrap()).unwrap();
        assert_eq!(
            mini,
            json!({"temperature": 0.3, "reasoning_effort": "high"})
        );
        assert!(chat_params("grok-3", &p).is_none());
        assert!(chat_params("grok-4-fast-non-reasoning", &p).is_none());
        let plain: ModelParameters = serde_json::from_value(json!({"temperature": 1})).unwrap();
        assert!(chat_params("grok-4", &plain).is_none());
    }
}
