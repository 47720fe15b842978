//! Cerebras (`cerebras`): OpenAI's API at `https://api.cerebras.ai`, with these differences:
//!
//! - no embeddings;
//! - assistant messages sent back with reasoning text (`reasoning_content`, `reasoning`) are
//!   rejected, so that text is removed from the history before sending.

use super::openai::{self, Dialect, Operations};
use crate::schemas::{ChatMessage, Role};

/// Cerebras's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cerebras.ai";

/// Cerebras's differences from OpenAI.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    supports: Operations {
        embeddings: false,
        ..Operations::ALL
    },
    chat_messages,
    ..openai::DIALECT
};

/// Reasoning fields some providers return and clients echo back in the history.
const REASONING_FIELDS: [&str; 2] = ["reasoning", "reasoning_details"];

fn has_reasoning(m: &ChatMessage) -> bool {
    m.role == Some(Role::Assistant)
        && (m.reasoning_content.is_some()
            || REASONING_FIELDS.iter().any(|f| m.extra.contains_key(*f)))
}

fn chat_messages(messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
    if !messages.iter().any(has_reasoning) {
        return None;
    }
    Some(
        messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if has_reasoning(&m) {
                    m.reasoning_content = None;
                    for f in REASONING_FIELDS {
                        m.extra.remove(f);
                    }
                }
                m
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_reasoning_from_assistant_history_only() {
        let history: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "user", "content": "hi", "reasoning": "kept: not an assistant turn"},
            {"role": "assistant", "content": "hello", "reasoning_content": "thinking…"},
        ]))
        .unwrap();
        let out = serde_json::to_value(chat_messages(&history).unwrap()).unwrap();
        assert_eq!(
            out,
            json!([
                {"role": "user", "content": "hi", "reasoning": "kept: not an assistant turn"},
                {"role": "assistant", "content": "hello"}
            ])
        );
        assert!(chat_messages(&history[..1]).is_none());
        const { assert!(!DIALECT.supports.embeddings) };
    }
}
