//! Rule conditions and the request facts they look at.
//!
//! Facts that cost something (the joined input text, the serialized size) are computed at most
//! once per request and only when a rule asks for them.

use std::borrow::Cow;
use std::io;

use bifrost_core::schemas::{
    BifrostRequest, ChatMessage, EmbeddingInput, MessageContent, PromptInput, RequestInput, Role,
};
use regex::Regex;
use serde_json::Value;

/// All conditions of one rule; an empty list or `None` matches anything.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub providers: Vec<bifrost_core::schemas::ProviderKey>,
    pub models: Vec<ModelPattern>,
    pub message_regex: Option<Regex>,
    pub request_size: Option<SizeRange>,
}

impl Conditions {
    /// True when every given condition holds.
    pub(crate) fn matches(&self, facts: &mut Facts<'_>) -> bool {
        let req = facts.req;
        if !self.providers.is_empty() && !self.providers.contains(&req.provider) {
            return false;
        }
        if !self.models.is_empty() && !self.models.iter().any(|m| m.matches(&req.model)) {
            return false;
        }
        if let Some(size) = &self.request_size {
            let n = facts.size();
            if n < size.min || n > size.max {
                return false;
            }
        }
        if let Some(re) = &self.message_regex
            && !re.is_match(facts.text())
        {
            return false;
        }
        true
    }
}

/// Inclusive bounds on the serialized input's size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeRange {
    pub min: u64,
    pub max: u64,
}

/// A model name, or a glob where `*` matches any run of characters (`gpt-4*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModelPattern {
    Exact(String),
    Glob(Vec<String>),
}

impl ModelPattern {
    pub(crate) fn new(pattern: String) -> Self {
        if pattern.contains('*') {
            Self::Glob(pattern.split('*').map(str::to_owned).collect())
        } else {
            Self::Exact(pattern)
        }
    }

    pub(crate) fn matches(&self, model: &str) -> bool {
        match self {
            Self::Exact(m) => m == model,
            Self::Glob(parts) => glob_match(parts, model),
        }
    }
}

/// `parts` is the pattern split on `*`, so there are at least two and the first and last are
/// anchored to the ends.
fn glob_match(parts: &[String], s: &str) -> bool {
    let [first, middle @ .., last] = parts else {
        return false;
    };
    let Some(mut rest) = s.strip_prefix(first.as_str()) else {
        return false;
    };
    for part in middle {
        match rest.find(part.as_str()) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

/// The request, plus lazily computed facts about it.
pub(crate) struct Facts<'r> {
    pub req: &'r BifrostRequest,
    text: Option<Cow<'r, str>>,
    size: Option<u64>,
}

impl<'r> Facts<'r> {
    pub(crate) fn new(req: &'r BifrostRequest) -> Self {
        Self {
            req,
            text: None,
            size: None,
        }
    }

    /// The request's text: every chat message's text joined by spaces, the prompt(s), or the
    /// embedding input(s). Borrowed when there is one piece.
    pub(crate) fn text(&mut self) -> &str {
        self.text.get_or_insert_with(|| input_text(self.req))
    }

    /// Bytes of the input serialized as JSON (messages, prompt or embedding input).
    pub(crate) fn size(&mut self) -> u64 {
        *self
            .size
            .get_or_insert_with(|| serialized_size(&self.req.input))
    }
}

/// Joins text pieces with spaces, borrowing when there is only one.
fn join<'a>(pieces: impl Iterator<Item = &'a str>) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed("");
    let mut first = true;
    for p in pieces {
        if first {
            out = Cow::Borrowed(p);
            first = false;
        } else {
            let s = out.to_mut();
            s.push(' ');
            s.push_str(p);
        }
    }
    out
}

fn message_pieces(m: &ChatMessage) -> impl Iterator<Item = &str> {
    let (text, parts) = match &m.content {
        Some(MessageContent::Text(s)) => (Some(s.as_str()), None),
        Some(MessageContent::Parts(p)) => (None, Some(p)),
        None => (None, None),
    };
    text.into_iter().chain(
        parts
            .into_iter()
            .flatten()
            .filter_map(|p| p.text.as_deref()),
    )
}

fn input_text(req: &BifrostRequest) -> Cow<'_, str> {
    match &req.input {
        RequestInput::Chat(messages) => join(messages.iter().flat_map(message_pieces)),
        RequestInput::TextCompletion(PromptInput::Text(s)) => Cow::Borrowed(s),
        RequestInput::TextCompletion(PromptInput::Batch(items)) => {
            join(items.iter().filter_map(Value::as_str))
        }
        RequestInput::Embedding(EmbeddingInput::Text(s)) => Cow::Borrowed(s),
        RequestInput::Embedding(EmbeddingInput::Texts(v)) => join(v.iter().map(String::as_str)),
        RequestInput::Embedding(EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_)) => {
            Cow::Borrowed("")
        }
    }
}

/// The text `{{input}}` stands for in a chat answer: the last user message (its text parts
/// joined), or the last message of any role when there is no user message.
pub(crate) fn last_user_text(messages: &[ChatMessage]) -> Cow<'_, str> {
    let m = messages
        .iter()
        .rev()
        .find(|m| m.role == Some(Role::User))
        .or_else(|| messages.last());
    let Some(m) = m else {
        return Cow::Borrowed("");
    };
    let mut pieces = message_pieces(m);
    let Some(first) = pieces.next() else {
        return Cow::Borrowed("");
    };
    match pieces.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut s = String::with_capacity(first.len() + second.len());
            s.push_str(first);
            s.push_str(second);
            pieces.for_each(|p| s.push_str(p));
            Cow::Owned(s)
        }
    }
}

/// Counts bytes written without keeping them.
struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_size(input: &RequestInput) -> u64 {
    let mut c = Counter(0);
    let res = match input {
        RequestInput::Chat(m) => serde_json::to_writer(&mut c, m),
        RequestInput::TextCompletion(p) => serde_json::to_writer(&mut c, p),
        RequestInput::Embedding(e) => serde_json::to_writer(&mut c, e),
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "mocker could not size the request input");
    }
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let p = |s: &str| ModelPattern::new(s.to_owned());
        assert!(p("gpt-4*").matches("gpt-4o-mini"));
        assert!(p("gpt-4*").matches("gpt-4"));
        assert!(!p("gpt-4*").matches("gpt-3.5-turbo"));
        assert!(p("*mini").matches("gpt-4o-mini"));
        assert!(p("claude-*-sonnet*").matches("claude-3-5-sonnet-20240620"));
        assert!(!p("claude-*-sonnet*").matches("claude-3-haiku"));
        assert!(p("*").matches("anything"));
        assert!(!p("ab*ba").matches("aba"));
        assert!(p("ab*ba").matches("abba"));
        assert!(p("gpt-4").matches("gpt-4"));
        assert!(!p("gpt-4").matches("gpt-4o"));
    }

    #[test]
    fn go_durations() {
        use crate::config::parse_go_duration as p;
        use std::time::Duration;
        assert_eq!(p("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(p("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(p("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(p("100us"), Some(Duration::from_micros(100)));
        assert_eq!(p("0"), Some(Duration::ZERO));
        assert_eq!(p("250"), None);
        assert_eq!(p("-1s"), None);
        assert_eq!(p("soon"), None);
    }
}
