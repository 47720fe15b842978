//! Hand-written `Deserialize` for [`ChatMessage`] and [`MessageContent`]: one pass over the
//! input, unknown message fields collected into `extra`, nothing buffered.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{ChatMessage, ContentPart, MessageContent};

/// A message key: a known field, or any other name (borrowed from the input when possible).
enum Key<'de> {
    Role,
    Content,
    Name,
    ToolCalls,
    ToolCallId,
    Refusal,
    ReasoningContent,
    Other(Cow<'de, str>),
}

impl<'de> Key<'de> {
    fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "role" => Self::Role,
            "content" => Self::Content,
            "name" => Self::Name,
            "tool_calls" => Self::ToolCalls,
            "tool_call_id" => Self::ToolCallId,
            "refusal" => Self::Refusal,
            "reasoning_content" => Self::ReasoningContent,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::from_str(v).unwrap_or(Key::Other(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::from_str(v).unwrap_or_else(|| Key::Other(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::from_str(&v).unwrap_or(Key::Other(Cow::Owned(v))))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for ChatMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = ChatMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chat message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatMessage, A::Error> {
                let mut m = ChatMessage::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key {
                        Key::Role => m.role = map.next_value()?,
                        Key::Content => m.content = map.next_value()?,
                        Key::Name => m.name = map.next_value()?,
                        Key::ToolCalls => m.tool_calls = map.next_value()?,
                        Key::ToolCallId => m.tool_call_id = map.next_value()?,
                        Key::Refusal => m.refusal = map.next_value()?,
                        Key::ReasoningContent => m.reasoning_content = map.next_value()?,
                        Key::Other(k) => {
                            let v: Value = map.next_value()?;
                            m.extra.insert(k.into_owned(), v);
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(MessageVisitor)
    }
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(p) = seq.next_element::<ContentPart>()? {
                    parts.push(p);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        d.deserialize_any(ContentVisitor)
    }
}
