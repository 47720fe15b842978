//! Maxim's logging wire format, as its SDKs (Go, Python, JS) write it.
//!
//! An upload is `POST {base}/api/sdk/v3/log?id={log repository}` with the key in
//! `x-maxim-api-key` and a body of newline-separated *commit logs*, one entity change each:
//!
//! ```text
//! trace{id=T,action=create,data={"id":T,"name":…,"startTimestamp":…,"sessionId":…,"tags":{…}}}
//! trace{id=T,action=add-generation,data={"id":G,"provider":…,"model":…,"messages":[…],"modelParameters":{…},…}}
//! generation{id=G,action=result,data={"result":{…OpenAI chat.completion…}}}
//! generation{id=G,action=end,data={"endTimestamp":…}}
//! trace{id=T,action=end,data={"endTimestamp":…}}
//! ```
//!
//! Ids are UUIDs; timestamps are RFC 3339 in UTC. Entities are created by their first commit
//! and updated by later ones, so a request's lines may travel in different uploads.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bifrost_core::schemas::{
    BifrostResponse, ChatMessage, EmbeddingInput, ModelParameters, PromptInput, RequestInput, Usage,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::stream::StreamSummary;

/// A fresh random id in UUID v4 form, the shape Maxim's SDKs use for traces and generations.
pub(crate) fn new_id() -> String {
    const VERSION_MASK: u128 = 0xF << 76;
    const VARIANT_MASK: u128 = 0x3 << 62;
    let v = (fastrand::u128(..) & !VERSION_MASK | 0x4 << 76) & !VARIANT_MASK | 0x2 << 62;
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// RFC 3339 in UTC with milliseconds (`2025-01-31T12:00:00.000Z`), as the SDKs send.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's civil-from-days algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Whether a caller-chosen id can go into a commit-log line as is: the line format has no
/// escaping, so `,` `{` `}` `=` and whitespace would corrupt it.
pub(crate) fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b'{' | b'}' | b'='))
}

/// Appends one commit log line: `entity{id=…,action=…,data=<json>}`.
fn line(out: &mut String, entity: &str, id: &str, action: &str, data: &Value) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = write!(out, "{entity}{{id={id},action={action},data={data}}}");
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A whole answer (its relayed body, if any, is rendered as sent).
    Response(Box<BifrostResponse>),
    /// A stream that finished; what the chunks added up to.
    Stream(Box<StreamSummary>),
    /// A failure.
    Error(ErrorInfo),
}

/// The parts of an error Maxim's generation error holds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ErrorInfo {
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    #[serde(skip)]
    pub(crate) status: Option<u16>,
}

/// The trace to create with this entry (the first entry of a request that owns its trace).
#[derive(Debug)]
pub(crate) struct NewTrace {
    pub(crate) name: String,
    pub(crate) session_id: Option<String>,
}

/// The generation to add to the trace (absent when the caller named its own generation).
#[derive(Debug, Clone)]
pub(crate) struct NewGeneration {
    pub(crate) name: Option<String>,
    pub(crate) input: RequestInput,
    pub(crate) params: ModelParameters,
}

/// One attempt of one request, everything needed to render its commit logs. Built on the
/// request path (moves and cheap clones only) and rendered by the sender task.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) repo: Arc<str>,
    pub(crate) trace_id: Arc<str>,
    pub(crate) new_trace: Option<NewTrace>,
    /// End the trace (not when only the caller's generation is named).
    pub(crate) end_trace: bool,
    pub(crate) generation_id: Arc<str>,
    pub(crate) new_generation: Option<NewGeneration>,
    pub(crate) provider: String,
    pub(crate) model: String,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) outcome: Outcome,
    /// The caller's tags (headers), for the trace and the generation.
    pub(crate) tags: Arc<[(String, String)]>,
    /// The gateway's own tags for this attempt (latency, retries, fallback, status).
    pub(crate) attempt_tags: Vec<(&'static str, String)>,
}

impl Entry {
    /// The entry's commit logs, newline-separated.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        let t = &*self.trace_id;
        let g = &*self.generation_id;
        let start = timestamp(self.start);
        let end = timestamp(self.end);
        let custom = tag_map(self.tags.iter().map(|(k, v)| (k.as_str(), v.clone())));
        if let Some(nt) = &self.new_trace {
            let mut data = Map::new();
            data.insert("id".into(), t.into());
            data.insert("name".into(), nt.name.clone().into());
            data.insert("startTimestamp".into(), start.clone().into());
            if let Some(s) = &nt.session_id {
                data.insert("sessionId".into(), s.clone().into());
            }
            if !custom.is_empty() {
                data.insert("tags".into(), Value::Object(custom.clone()));
            }
            line(&mut out, "trace", t, "create", &Value::Object(data));
            if let Some(ng) = &self.new_generation {
                let input = latest_input(&ng.input);
                line(&mut out, "trace", t, "update", &json!({ "input": input }));
            }
        }
        let mut gen_tags = custom.clone();
        gen_tags.insert("model".into(), self.model.clone().into());
        gen_tags.insert("provider".into(), self.provider.clone().into());
        for (k, v) in &self.attempt_tags {
            gen_tags.insert((*k).into(), v.clone().into());
        }
        if let Some(ng) = &self.new_generation {
            let mut data = Map::new();
            data.insert("id".into(), g.into());
            if let Some(n) = &ng.name {
                data.insert("name".into(), n.clone().into());
            }
            data.insert("provider".into(), self.provider.clone().into());
            data.insert("model".into(), self.model.clone().into());
            data.insert("messages".into(), messages(&ng.input));
            data.insert(
                "modelParameters".into(),
                serde_json::to_value(&ng.params).unwrap_or_else(|_| json!({})),
            );
            data.insert("startTimestamp".into(), start.into());
            data.insert("tags".into(), Value::Object(gen_tags));
            line(&mut out, "trace", t, "add-generation", &Value::Object(data));
        } else {
            line(
                &mut out,
                "generation",
                g,
                "update",
                &json!({ "tags": gen_tags }),
            );
        }
        let output = match &self.outcome {
            Outcome::Error(e) => {
                line(&mut out, "generation", g, "error", &json!({ "error": e }));
                None
            }
            Outcome::Response(r) => {
                let (result, text) = response_result(r);
                // Pushed as text: a relayed body goes out as the provider sent it.
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = write!(
                    out,
                    "generation{{id={g},action=result,data={{\"result\":{result}}}}}"
                );
                text
            }
            Outcome::Stream(s) => {
                let result = s.to_chat_completion();
                line(
                    &mut out,
                    "generation",
                    g,
                    "result",
                    &json!({ "result": result }),
                );
                Some(s.content.clone())
            }
        };
        line(
            &mut out,
            "generation",
            g,
            "end",
            &json!({ "endTimestamp": end }),
        );
        if self.end_trace {
            let mut update = Map::new();
            if let Some(o) = output.filter(|o| !o.is_empty()) {
                update.insert("output".into(), o.into());
            }
            update.insert("tags".into(), json!({ "model": self.model }));
            line(&mut out, "trace", t, "update", &Value::Object(update));
            line(&mut out, "trace", t, "end", &json!({ "endTimestamp": end }));
        }
        out
    }
}

fn tag_map<'a>(tags: impl Iterator<Item = (&'a str, String)>) -> Map<String, Value> {
    tags.map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect()
}

/// The generation's result JSON (as text) and the answer's text for the trace output.
fn response_result(r: &BifrostResponse) -> (String, Option<String>) {
    if let Some(body) = r.wire_body.as_deref() {
        // The provider's OpenAI-shaped body as relayed to the caller. JSON allows raw line
        // breaks only between tokens, so blanking them keeps the document and the one-line
        // format intact; `RawValue` checks it is one JSON value first.
        if let Ok(raw) = serde_json::from_slice::<&serde_json::value::RawValue>(body) {
            let text = raw.get().replace(['\n', '\r'], " ");
            let output = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| first_text(&v));
            return (text, output);
        }
    }
    let text = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
    (text, r.first_text())
}

/// The first choice's text of an OpenAI-shaped answer.
fn first_text(v: &Value) -> Option<String> {
    let c = v.get("choices")?.get(0)?;
    let s = c
        .get("message")
        .and_then(|m| m.get("content"))
        .or_else(|| c.get("text"))?;
    s.as_str().map(str::to_owned)
}

/// The generation's `messages`: chat messages as OpenAI writes them; a prompt or an
/// embedding input as one user message (as Bifrost's Go plugin does for prompts).
fn messages(input: &RequestInput) -> Value {
    match input {
        RequestInput::Chat(m) => serde_json::to_value(m).unwrap_or_else(|_| json!([])),
        RequestInput::TextCompletion(p) => json!([{ "role": "user", "content": prompt_text(p) }]),
        RequestInput::Embedding(e) => json!([{ "role": "user", "content": embedding_text(e) }]),
    }
}

/// The trace's `input`: the last message's text (`-` when it has none), as Bifrost does.
fn latest_input(input: &RequestInput) -> String {
    match input {
        RequestInput::Chat(m) => m
            .last()
            .and_then(ChatMessage::text_content)
            .unwrap_or_else(|| "-".to_owned()),
        RequestInput::TextCompletion(p) => prompt_text(p),
        RequestInput::Embedding(e) => embedding_text(e),
    }
}

fn prompt_text(p: &PromptInput) -> String {
    match p {
        PromptInput::Text(s) => s.clone(),
        PromptInput::Batch(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
    }
}

fn embedding_text(e: &EmbeddingInput) -> String {
    match e {
        EmbeddingInput::Text(s) => s.clone(),
        EmbeddingInput::Texts(v) => v.join("\n"),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => "<tokens>".to_owned(),
    }
}

/// Usage as the SDKs send it (OpenAI's names).
pub(crate) fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(u).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::Role;
    use bytes::Bytes;

    #[test]
    fn ids_are_uuid_v4() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, new_id());
        assert!(valid_id(&a));
        for bad in ["", "a,b", "a}", "a b", "a=b"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap day 2024
        assert_eq!(timestamp(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800); // 2000-03-01
        assert_eq!(timestamp(t), "2000-03-01T00:00:00.000Z");
    }

    fn entry(outcome: Outcome) -> Entry {
        Entry {
            repo: "repo".into(),
            trace_id: "t-1".into(),
            new_trace: Some(NewTrace {
                name: "bifrost_chat_completion".into(),
                session_id: Some("s-1".into()),
            }),
            end_trace: true,
            generation_id: "g-1".into(),
            new_generation: Some(NewGeneration {
                name: None,
                input: RequestInput::Chat(vec![ChatMessage::text(Role::User, "hi")]),
                params: ModelParameters {
                    temperature: Some(0.5),
                    ..ModelParameters::default()
                },
            }),
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            start: UNIX_EPOCH,
            end: UNIX_EPOCH + Duration::from_secs(1),
            outcome,
            tags: Arc::from(vec![("env".to_owned(), "prod".to_owned())]),
            attempt_tags: vec![("latency_ms", "1000".into())],
        }
    }

    #[test]
    fn a_relayed_body_is_rendered_on_one_line_as_sent() {
        let body = "{\n  \"id\": \"c-1\",\n  \"choices\": [{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a\\nb\"}}]\n}\n";
        let r = BifrostResponse {
            wire_body: Some(Bytes::from(body)),
            ..BifrostResponse::default()
        };
        let text = entry(Outcome::Response(Box::new(r))).render();
        let lines: Vec<&str> = text.lines().collect();
        let actions: Vec<&str> = lines
            .iter()
            .map(|l| {
                l.split(",action=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            actions,
            [
                "create",
                "update",
                "add-generation",
                "result",
                "end",
                "update",
                "end"
            ]
        );
        let result = lines[3];
        assert!(result.starts_with("generation{id=g-1,action=result,data="));
        let data: Value = serde_json::from_str(
            result
                .strip_prefix("generation{id=g-1,action=result,data=")
                .unwrap()
                .strip_suffix('}')
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["result"]["choices"][0]["message"]["content"], "a\nb");
        assert!(lines[5].contains(r#""output":"a\nb""#), "{}", lines[5]);
        assert!(lines[0].contains(r#""sessionId":"s-1""#));
        assert!(lines[2].contains(r#""temperature":0.5"#));
        assert!(lines[2].contains(r#""env":"prod""#));
    }

    #[test]
    fn an_error_is_an_error_commit() {
        let text = entry(Outcome::Error(ErrorInfo {
            message: "boom".into(),
            code: None,
            kind: Some("server_error".into()),
            status: Some(500),
        }))
        .render();
        assert!(text.contains(
            r#"generation{id=g-1,action=error,data={"error":{"message":"boom","type":"server_error"}}}"#
        ));
    }
}
