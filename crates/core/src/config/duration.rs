//! Backoff durations as Bifrost writes them: integer milliseconds or a Go-style string.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Int(u64),
        Float(f64),
        Str(String),
    }
    match Repr::deserialize(d)? {
        Repr::Int(ms) => Ok(Duration::from_millis(ms)),
        Repr::Float(ms) if ms.is_finite() && ms >= 0.0 => Ok(Duration::from_secs_f64(ms / 1000.0)),
        Repr::Float(ms) => Err(serde::de::Error::custom(format!("invalid duration {ms}"))),
        Repr::Str(s) => parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: use milliseconds or a string like \"500ms\", \"2s\", \"1m\""
            ))
        }),
    }
}

/// Parses `"500ms"`, `"2s"`, `"1.5s"`, `"1m"`, `"100us"` or a bare number of milliseconds.
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "" | "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "us" | "µs" => n / 1_000_000.0,
        "ns" => n / 1_000_000_000.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse("soon"), None);
    }
}
