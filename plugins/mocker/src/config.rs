//! Reads Bifrost's mocker config block into precompiled rules.
//!
//! The block is walked by hand rather than derived so that every error names the exact field
//! (`rules[0].conditions.message_regex`) and unknown keys are ignored, as Go's decoder does.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bifrost_core::schemas::ProviderKey;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::matching::{Conditions, ModelPattern, SizeRange};
use crate::respond::{ErrorContent, SuccessContent, Template, UsageSpec};

/// A config block the mocker cannot use, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mocker config at `{field}`: {message}")]
pub struct MockerConfigError {
    /// Path of the field at fault, e.g. `rules[0].conditions.message_regex`, so a long config
    /// can be fixed without guessing.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl MockerConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What to do with a request no rule answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultBehavior {
    Passthrough,
    Success,
    Error,
}

/// A delay before answering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Latency {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
}

impl Latency {
    /// The delay for one request.
    pub(crate) fn sample(&self) -> Duration {
        match *self {
            Self::Fixed(d) => d,
            Self::Uniform { min, max } if max > min => min + (max - min).mul_f64(fastrand::f64()),
            Self::Uniform { min, .. } => min,
        }
    }
}

/// What a rule does once it fires.
#[derive(Debug)]
pub(crate) enum Action {
    Success(SuccessContent),
    Error(ErrorContent),
    /// Our extension: let the request through (after the rule's latency).
    Passthrough,
}

/// One rule, ready for the hot path.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    pub enabled: bool,
    pub priority: i64,
    pub probability: f64,
    pub conditions: Conditions,
    pub latency: Option<Latency>,
    /// Possible actions; empty means "delay only, then pass through".
    pub actions: Vec<Action>,
    /// Running sum of the actions' weights, for a binary search; empty when there is one
    /// action or none.
    pub cumulative: Vec<f64>,
    pub hits: AtomicU64,
}

impl Rule {
    /// Rolls the rule's probability.
    pub(crate) fn fires(&self) -> bool {
        self.probability >= 1.0 || (self.probability > 0.0 && fastrand::f64() < self.probability)
    }

    /// Picks an action by weight; `None` for a delay-only rule.
    pub(crate) fn pick(&self) -> Option<&Action> {
        match self.actions.len() {
            0 => None,
            1 => self.actions.first(),
            n => {
                let total = self.cumulative.last().copied().unwrap_or(0.0);
                if total <= 0.0 {
                    return self.actions.get(fastrand::usize(..n));
                }
                let r = fastrand::f64() * total;
                let i = self.cumulative.partition_point(|&c| c <= r).min(n - 1);
                self.actions.get(i)
            }
        }
    }
}

/// The whole block, compiled.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub enabled: bool,
    pub default_behavior: DefaultBehavior,
    pub global_latency: Option<Latency>,
    /// Sorted by priority, highest first; ties keep config order.
    pub rules: Vec<Rule>,
}

/// The rule Bifrost installs when the mocker is enabled without rules.
const DEFAULT_RULE_NAME: &str = "default-mock";
const DEFAULT_RULE_MESSAGE: &str = "This is a mock response from the Mocker plugin";

type Result<T> = std::result::Result<T, MockerConfigError>;

/// A JSON object being read, with its path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: String) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(MockerConfigError::new(
                path,
                format!("expected an object, got {}", kind_of(other)),
            )),
        }
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of `key`; `null` counts as absent, as Go's pointers do.
    fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.raw(key)
            .map(|v| {
                T::deserialize(v)
                    .map_err(|e| MockerConfigError::new(self.path_of(key), e.to_string()))
            })
            .transpose()
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'a>>> {
        self.raw(key)
            .map(|v| Obj::new(v, self.path_of(key)))
            .transpose()
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(MockerConfigError::new(
                self.path_of(key),
                format!("expected an array, got {}", kind_of(other)),
            )),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Compiles a mocker config block (`null` means "all defaults": disabled).
pub(crate) fn compile(config: &Value) -> Result<Compiled> {
    let empty = Value::Object(Map::new());
    let root = Obj::new(
        if config.is_null() { &empty } else { config },
        String::new(),
    )?;

    let enabled = root.get::<bool>("enabled")?.unwrap_or(false);
    let default_behavior = match root.get::<String>("default_behavior")?.as_deref() {
        None | Some("" | "passthrough") => DefaultBehavior::Passthrough,
        Some("success") => DefaultBehavior::Success,
        Some("error") => DefaultBehavior::Error,
        Some(other) => {
            return Err(MockerConfigError::new(
                "default_behavior",
                format!("unknown value {other:?}: use \"passthrough\", \"success\" or \"error\""),
            ));
        }
    };
    let global_latency = root
        .obj("global_latency")?
        .map(|o| latency(&o))
        .transpose()?;

    let mut rules = Vec::new();
    if let Some(list) = root.array("rules")? {
        for (i, v) in list.iter().enumerate() {
            rules.push(rule(&Obj::new(v, format!("rules[{i}]"))?)?);
        }
    }
    if rules.is_empty() && enabled {
        rules.push(default_rule());
    }
    // Stable, so equal priorities keep their config order.
    rules.sort_by_key(|r| std::cmp::Reverse(r.priority));

    Ok(Compiled {
        enabled,
        default_behavior,
        global_latency,
        rules,
    })
}

fn default_rule() -> Rule {
    Rule {
        name: DEFAULT_RULE_NAME.to_owned(),
        enabled: true,
        priority: 1,
        probability: 1.0,
        conditions: Conditions::default(),
        latency: None,
        actions: vec![Action::Success(SuccessContent::plain(DEFAULT_RULE_MESSAGE))],
        cumulative: Vec::new(),
        hits: AtomicU64::new(0),
    }
}

fn rule(o: &Obj<'_>) -> Result<Rule> {
    let name = o.get::<String>("name")?.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(MockerConfigError::new(
            o.path_of("name"),
            "every rule needs a name",
        ));
    }
    let enabled = o.get::<bool>("enabled")?.unwrap_or(true);
    let priority = o.get::<i64>("priority")?.unwrap_or(0);
    let probability = o.get::<f64>("probability")?.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&probability) {
        return Err(MockerConfigError::new(
            o.path_of("probability"),
            format!("{probability} is outside 0.0..=1.0"),
        ));
    }
    let conditions = o
        .obj("conditions")?
        .map(|c| conditions(&c))
        .transpose()?
        .unwrap_or_default();
    let latency = o.obj("latency")?.map(|l| latency(&l)).transpose()?;

    let mut actions = Vec::new();
    let mut cumulative = Vec::new();
    let mut sum = 0.0;
    if let Some(list) = o.array("responses")? {
        for (i, v) in list.iter().enumerate() {
            let (weight, action) =
                response(&Obj::new(v, format!("{}[{i}]", o.path_of("responses")))?)?;
            sum += weight;
            cumulative.push(sum);
            actions.push(action);
        }
    }
    if actions.len() < 2 {
        cumulative.clear();
    }

    Ok(Rule {
        name,
        enabled,
        priority,
        probability,
        conditions,
        latency,
        actions,
        cumulative,
        hits: AtomicU64::new(0),
    })
}

fn conditions(o: &Obj<'_>) -> Result<Conditions> {
    let providers = o
        .get::<Vec<String>>("providers")?
        .unwrap_or_default()
        .iter()
        .map(|p| ProviderKey::parse(p.trim()))
        .collect();
    let models = o
        .get::<Vec<String>>("models")?
        .unwrap_or_default()
        .into_iter()
        .map(ModelPattern::new)
        .collect();
    let message_regex = o
        .get::<String>("message_regex")?
        .map(|re| {
            Regex::new(&re)
                .map_err(|e| MockerConfigError::new(o.path_of("message_regex"), e.to_string()))
        })
        .transpose()?;
    let request_size = o.obj("request_size")?.map(|s| size_range(&s)).transpose()?;
    Ok(Conditions {
        providers,
        models,
        message_regex,
        request_size,
    })
}

fn size_range(o: &Obj<'_>) -> Result<SizeRange> {
    let min = o.get::<i64>("min")?.unwrap_or(0);
    if min < 0 {
        return Err(MockerConfigError::new(
            o.path_of("min"),
            "cannot be negative",
        ));
    }
    let max = o.get::<i64>("max")?;
    if let Some(max) = max
        && max < min
    {
        return Err(MockerConfigError::new(
            o.path_of("max"),
            format!("{max} is less than min ({min})"),
        ));
    }
    Ok(SizeRange {
        min: min.unsigned_abs(),
        max: max.map_or(u64::MAX, i64::unsigned_abs),
    })
}

/// Reads one response; returns its weight and what it does.
fn response(o: &Obj<'_>) -> Result<(f64, Action)> {
    let weight = o.get::<f64>("weight")?.unwrap_or(1.0);
    if !weight.is_finite() || weight < 0.0 {
        return Err(MockerConfigError::new(
            o.path_of("weight"),
            format!("{weight} is not a non-negative number"),
        ));
    }
    let kind = o.get::<String>("type")?.unwrap_or_default();
    let action = match kind.as_str() {
        "success" => {
            let content = o.obj("content")?.ok_or_else(|| {
                MockerConfigError::new(o.path_of("content"), "a success response needs content")
            })?;
            Action::Success(success(&content)?)
        }
        "error" => {
            let err = o.obj("error")?.ok_or_else(|| {
                MockerConfigError::new(
                    o.path_of("error"),
                    "an error response needs an error object",
                )
            })?;
            let allow_fallbacks = o.get::<bool>("allow_fallbacks")?;
            Action::Error(error(&err, allow_fallbacks)?)
        }
        "passthrough" => Action::Passthrough,
        "" => {
            return Err(MockerConfigError::new(
                o.path_of("type"),
                "missing: use \"success\", \"error\" or \"passthrough\"",
            ));
        }
        other => {
            return Err(MockerConfigError::new(
                o.path_of("type"),
                format!("unknown type {other:?}: use \"success\", \"error\" or \"passthrough\""),
            ));
        }
    };
    Ok((weight, action))
}

fn success(o: &Obj<'_>) -> Result<SuccessContent> {
    let message = o.get::<String>("message")?.unwrap_or_default();
    let template = o
        .get::<String>("message_template")?
        .filter(|t| !t.is_empty());
    if message.is_empty() && template.is_none() {
        return Err(MockerConfigError::new(
            o.path_of("message"),
            "a success response needs a message (or message_template)",
        ));
    }
    let usage = o.obj("usage")?.map(|u| usage(&u)).transpose()?;
    let custom_fields = o
        .get::<Map<String, Value>>("custom_fields")?
        .filter(|m| !m.is_empty());
    Ok(SuccessContent {
        message: Template::new(template.unwrap_or(message)),
        model: o.get::<String>("model")?.filter(|m| !m.is_empty()),
        usage,
        finish_reason: o.get::<String>("finish_reason")?.filter(|f| !f.is_empty()),
        custom_fields,
    })
}

fn usage(o: &Obj<'_>) -> Result<UsageSpec> {
    let count = |key: &str| -> Result<Option<u64>> {
        match o.get::<i64>(key)? {
            Some(n) if n < 0 => Err(MockerConfigError::new(o.path_of(key), "cannot be negative")),
            // Go cannot tell 0 from absent; 0 means "work it out", as there.
            Some(0) | None => Ok(None),
            Some(n) => Ok(Some(n.unsigned_abs())),
        }
    };
    Ok(UsageSpec {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        total_tokens: count("total_tokens")?,
    })
}

fn error(o: &Obj<'_>, allow_fallbacks: Option<bool>) -> Result<ErrorContent> {
    let message = o.get::<String>("message")?.unwrap_or_default();
    if message.is_empty() {
        return Err(MockerConfigError::new(
            o.path_of("message"),
            "an error response needs a message",
        ));
    }
    let status = match o.get::<i64>("status_code")? {
        None => 500,
        Some(s) => u16::try_from(s)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| {
                MockerConfigError::new(
                    o.path_of("status_code"),
                    format!("{s} is not an HTTP status (100-599)"),
                )
            })?,
    };
    Ok(ErrorContent {
        message,
        kind: o.get::<String>("type")?,
        code: string_or_number(o, "code")?,
        status,
        allow_fallbacks,
    })
}

/// Go types `code` as a string, but configs often write `429`; take both.
fn string_or_number(o: &Obj<'_>, key: &str) -> Result<Option<String>> {
    match o.raw(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(MockerConfigError::new(
            o.path_of(key),
            format!("expected a string, got {}", kind_of(other)),
        )),
    }
}

fn latency(o: &Obj<'_>) -> Result<Latency> {
    let min = duration(o, "min")?.unwrap_or(Duration::ZERO);
    match o.get::<String>("type")?.as_deref() {
        None | Some("" | "fixed") => Ok(Latency::Fixed(min)),
        Some("uniform") => {
            let max = duration(o, "max")?.unwrap_or(min);
            if max < min {
                return Err(MockerConfigError::new(
                    o.path_of("max"),
                    format!("{max:?} is less than min ({min:?})"),
                ));
            }
            Ok(Latency::Uniform { min, max })
        }
        Some(other) => Err(MockerConfigError::new(
            o.path_of("type"),
            format!("unknown latency type {other:?}: use \"fixed\" or \"uniform\""),
        )),
    }
}

/// A duration as Go's encoder writes `time.Duration` (integer nanoseconds), or a Go duration
/// string such as `"250ms"` or `"1m30s"`.
fn duration(o: &Obj<'_>, key: &str) -> Result<Option<Duration>> {
    let bad = |msg: String| MockerConfigError::new(o.path_of(key), msg);
    match o.raw(key) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(ns) = n.as_u64() {
                Ok(Some(Duration::from_nanos(ns)))
            } else {
                match n.as_f64() {
                    Some(ns) if ns.is_finite() && ns >= 0.0 => {
                        Duration::try_from_secs_f64(ns / 1e9)
                            .map(Some)
                            .map_err(|e| bad(e.to_string()))
                    }
                    _ => Err(bad(format!("{n} cannot be negative"))),
                }
            }
        }
        Some(Value::String(s)) => parse_go_duration(s).map(Some).ok_or_else(|| {
            bad(format!(
                "{s:?} is not a duration like \"250ms\", \"1.5s\" or \"1m30s\""
            ))
        }),
        Some(other) => Err(bad(format!(
            "expected nanoseconds or a duration string, got {}",
            kind_of(other)
        ))),
    }
}

/// Parses Go's `time.ParseDuration` syntax (non-negative): `"300ms"`, `"1.5h"`, `"2h45m"`.
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let is_num = |c: char| c.is_ascii_digit() || c == '.';
    let mut rest = s;
    let mut secs = 0.0_f64;
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !is_num(c)).unwrap_or(rest.len());
        let n: f64 = rest.get(..n_end)?.parse().ok()?;
        rest = rest.get(n_end..)?;
        let u_end = rest.find(is_num).unwrap_or(rest.len());
        let scale = match rest.get(..u_end)? {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = rest.get(u_end..)?;
        secs += n * scale;
    }
    Duration::try_from_secs_f64(secs).ok()
}
