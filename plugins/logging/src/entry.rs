//! One log entry, and the cheap, bounded captures the hooks make of inputs and outputs.

use std::io::Write;

use bifrost_core::schemas::{BifrostRequest, BifrostResponse, RequestInput};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Marker appended to a captured field that was cut at the configured size.
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// One request as stored: one row of `bifrost_logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The request id (`x-request-id`, echoed to the caller).
    pub id: String,
    /// When the first attempt started, Unix milliseconds.
    pub started_at_ms: i64,
    /// When the answer (or the stream) ended, Unix milliseconds.
    pub ended_at_ms: i64,
    /// `http`, `grpc`, or empty for embedded use.
    pub transport: String,
    /// `chat_completion`, `chat_completion_stream`, `text_completion` or `embedding`.
    pub object_type: String,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The provider of the last attempt (the one that answered, on success).
    pub provider: String,
    /// The model of the last attempt.
    pub model: String,
    /// Every target tried, in order, as `provider/model` (the primary first).
    pub fallback_chain: Vec<String>,
    /// Which fallback answered (absent: the primary or none).
    pub fallback_index: Option<i64>,
    /// Retries spent on the last attempt.
    pub retries: i64,
    /// `success` or `error`.
    pub status: String,
    /// The HTTP status of an error (200 on success).
    pub status_code: Option<i64>,
    /// From the first attempt's start to the end, microseconds.
    pub latency_us: i64,
    /// Time to the first stream chunk, microseconds (streams only).
    pub ttft_us: Option<i64>,
    /// Input tokens, when the provider reported usage.
    pub prompt_tokens: Option<i64>,
    /// Output tokens.
    pub completion_tokens: Option<i64>,
    /// Total tokens.
    pub total_tokens: Option<i64>,
    /// The input (messages, prompt or embedding input) as JSON, per the content mode.
    pub input: Option<String>,
    /// The output (first choice's message, text, or an embedding summary), per the mode.
    pub output: Option<String>,
    /// The error message.
    pub error: Option<String>,
    /// The error's `type`.
    pub error_type: Option<String>,
    /// Id of the provider key used (never the secret).
    pub key_id: Option<String>,
    /// The caller's virtual key, masked (never the whole secret).
    pub virtual_key: Option<String>,
    /// The request's `user` field.
    pub user: Option<String>,
}

impl LogEntry {
    /// Approximate heap size, charged against the queue's byte budget.
    pub fn approx_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        256 + self.id.len()
            + self.model.len()
            + self
                .fallback_chain
                .iter()
                .map(|s| s.len() + 24)
                .sum::<usize>()
            + opt(&self.input)
            + opt(&self.output)
            + opt(&self.error)
            + opt(&self.user)
    }

    /// PostgreSQL text cannot hold NUL; one NUL would fail a whole batch.
    pub fn strip_nul(&mut self) {
        for s in [
            &mut self.input,
            &mut self.output,
            &mut self.error,
            &mut self.user,
        ]
        .into_iter()
        .flatten()
        {
            if s.contains('\0') {
                *s = s.replace('\0', "");
            }
        }
        if self.id.contains('\0') {
            self.id = self.id.replace('\0', "");
        }
        if self.model.contains('\0') {
            self.model = self.model.replace('\0', "");
        }
    }
}

/// A writer that keeps at most `cap` bytes and then fails, so serializing a huge input
/// into it stops early instead of building the whole string.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    cut: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.cut = true;
            return Err(std::io::Error::other("capped"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `value` as JSON, at most `cap` bytes (cut on a character boundary, then marked).
pub fn json_capped<T: Serialize + ?Sized>(value: &T, cap: usize) -> String {
    let mut w = Capped {
        buf: Vec::with_capacity(cap.min(1024)),
        cap,
        cut: false,
    };
    let _ = serde_json::to_writer(&mut w, value);
    finish(w.buf, w.cut)
}

/// `text` cut to at most `cap` bytes (marked when cut).
pub fn text_capped(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    finish(text.as_bytes()[..cap].to_vec(), true)
}

fn finish(mut bytes: Vec<u8>, cut: bool) -> String {
    let s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            // Cut inside a multi-byte character: drop its partial bytes.
            let valid = e.utf8_error().valid_up_to();
            bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    if cut { s + TRUNCATED_MARK } else { s }
}

/// Appends `piece` to a stream's accumulated output while it stays under `cap`.
pub fn append_capped(out: &mut String, piece: &str, cap: usize, cut: &mut bool) {
    if *cut {
        return;
    }
    let room = cap.saturating_sub(out.len());
    if piece.len() <= room {
        out.push_str(piece);
        return;
    }
    let mut end = room;
    while end > 0 && !piece.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&piece[..end]);
    out.push_str(TRUNCATED_MARK);
    *cut = true;
}

/// The request's input as JSON: the messages, the prompt, or the embedding input.
pub fn capture_input(req: &BifrostRequest, cap: usize) -> String {
    match &req.input {
        RequestInput::Chat(m) => json_capped(m, cap),
        RequestInput::TextCompletion(p) => json_capped(p, cap),
        RequestInput::Embedding(e) => json_capped(e, cap),
    }
}

#[derive(Deserialize)]
struct WireAnswer<'a> {
    #[serde(borrow, default)]
    choices: Vec<WireChoice<'a>>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

/// The answer's output: the first choice's message (JSON) or text, or for embeddings how
/// many vectors came back. A relayed body (`wire_body`) is read for its first choice only,
/// borrowing from the bytes, so the relay fast path is not given up for this.
pub fn capture_output(resp: &BifrostResponse, cap: usize) -> Option<String> {
    if let Some(body) = &resp.wire_body {
        let answer: WireAnswer<'_> = serde_json::from_slice(body).ok()?;
        let first = answer.choices.into_iter().next()?;
        let raw = first.message.or(first.text)?;
        return Some(text_capped(raw.get(), cap));
    }
    if let Some(data) = &resp.data {
        return Some(format!("{{\"embeddings\":{}}}", data.len()));
    }
    let first = resp.choices.as_ref()?.first()?;
    if let Some(m) = &first.message {
        return Some(json_capped(m, cap));
    }
    first.text.as_ref().map(|t| json_capped(t, cap))
}

/// The caller's virtual key as stored and filtered on: its prefix up to the last `-` and its
/// last four characters (`sk-bf-…c0de`), so logs name the key without holding the secret.
pub fn mask_virtual_key(vk: &str) -> String {
    if vk.contains('…') {
        return vk.to_owned();
    }
    let chars: Vec<char> = vk.chars().collect();
    let n = chars.len();
    if n <= 8 {
        let tail: String = chars[n.saturating_sub(2)..].iter().collect();
        return format!("…{tail}");
    }
    // A scheme prefix such as `sk-bf-`: up to the last `-` among the first 8 characters.
    let head8: String = chars[..8].iter().collect();
    let prefix_end = head8
        .rfind('-')
        .map(|i| head8[..=i].chars().count())
        .filter(|&p| p + 4 < n)
        .unwrap_or(0);
    let head: String = chars[..prefix_end].iter().collect();
    let tail: String = chars[n - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Unix milliseconds as RFC 3339 UTC (`2026-01-02T03:04:05.678Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`, fractions and `±hh:mm` offsets allowed) or a
/// Unix time in seconds or milliseconds (numbers past 10^11 are milliseconds).
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(if n.abs() >= 100_000_000_000 {
            n
        } else {
            n * 1000
        });
    }
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        let f = &r[..digits];
        let padded: String = f.chars().chain("000".chars()).take(3).collect();
        frac_ms = padded.parse::<i64>().ok()?;
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" | "" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + frac_ms)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::{ChatMessage, Choice, ProviderKey, Role};
    use bytes::Bytes;

    #[test]
    fn capped_json_stops_early_and_marks_the_cut() {
        let long = "é".repeat(100);
        let s = json_capped(&long, 11);
        assert!(s.ends_with(TRUNCATED_MARK), "{s}");
        assert!(s.len() <= 11 + TRUNCATED_MARK.len());
        assert_eq!(json_capped("hi", 100), "\"hi\"");
        assert_eq!(text_capped("abcdef", 3), format!("abc{TRUNCATED_MARK}"));
        let mut out = String::new();
        let mut cut = false;
        append_capped(&mut out, "abc", 5, &mut cut);
        append_capped(&mut out, "déf", 5, &mut cut);
        append_capped(&mut out, "more", 5, &mut cut);
        assert_eq!(out, format!("abcd{TRUNCATED_MARK}"));
    }

    #[test]
    fn output_from_a_relayed_body_and_from_parsed_answers() {
        let resp = BifrostResponse {
            wire_body: Some(Bytes::from_static(
                br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{}}"#,
            )),
            ..BifrostResponse::default()
        };
        assert_eq!(
            capture_output(&resp, 1000).as_deref(),
            Some(r#"{"role":"assistant","content":"hi"}"#)
        );
        let resp = BifrostResponse {
            choices: Some(vec![Choice {
                message: Some(ChatMessage::text(Role::Assistant, "yo")),
                ..Choice::default()
            }]),
            ..BifrostResponse::default()
        };
        let out = capture_output(&resp, 1000).unwrap();
        assert!(out.contains("\"yo\""), "{out}");
        let req = BifrostRequest::chat(
            ProviderKey::OpenAI,
            "m",
            vec![ChatMessage::text(Role::User, "hello")],
        );
        assert!(capture_input(&req, 1000).contains("hello"));
    }

    #[test]
    fn virtual_keys_are_masked() {
        assert_eq!(mask_virtual_key("sk-bf-1234567890abcd"), "sk-bf-…abcd");
        assert_eq!(mask_virtual_key("sk-bf-virtualkey-0001"), "sk-bf-…0001");
        assert_eq!(mask_virtual_key("abcdefghijkl"), "…ijkl");
        assert_eq!(mask_virtual_key("short"), "…rt");
        assert_eq!(mask_virtual_key("sk-bf-…abcd"), "sk-bf-…abcd");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        let t = parse_time_ms("2026-03-04T05:06:07.891Z").unwrap();
        assert_eq!(rfc3339(t), "2026-03-04T05:06:07.891Z");
        assert_eq!(
            parse_time_ms("2026-03-04T07:06:07+02:00"),
            parse_time_ms("2026-03-04T05:06:07Z")
        );
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(parse_time_ms("2026-13-04T05:06:07Z"), None);
    }
}
