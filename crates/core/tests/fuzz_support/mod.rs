//! Proptest strategies shared by the fuzz tests of `bifrost-core` and `bifrost-transport-http`
//! (the latter includes this file with `#[path]`): arbitrary JSON, structure-aware near-valid
//! bodies of every dialect (OpenAI/Bifrost, Anthropic, Gemini) and of the upstream answers,
//! random mutations of those, and raw bytes (invalid UTF-8, truncated JSON).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value, json};

/// A bounded config: `cases` per property (`BIFROST_FUZZ_CASES` overrides it for a longer
/// local run), no persistence files in the repository, little shrinking time (a failure
/// still reports its input).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("BIFROST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 10_000,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars and arbitrary JSON
// ---------------------------------------------------------------------------------------------

/// Words the translators look for, so random values hit real branches.
const WORDS: &[&str] = &[
    "",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "model",
    "chatbot",
    "text",
    "image",
    "image_url",
    "input_audio",
    "file",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "auto",
    "any",
    "none",
    "required",
    "AUTO",
    "ANY",
    "NONE",
    "VALIDATED",
    "base64",
    "url",
    "content",
    "ephemeral",
    "enabled",
    "disabled",
    "object",
    "array",
    "string",
    "number",
    "integer",
    "boolean",
    "null",
    "OBJECT",
    "STRING",
    "ARRAY",
    "TYPE_UNSPECIFIED",
    "json_object",
    "json_schema",
    "application/json",
    "text/plain",
    "image/png",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:;base64,",
    "data:image/png,notbase64",
    "https://example.com/a.png",
    "gs://bucket/file.pdf",
    "mock/echo",
    "mock/",
    "/echo",
    "/",
    "openai/gpt-4o-mini",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "end_turn",
    "tool_calls",
    "low",
    "medium",
    "high",
    "minimal",
    "sse",
    "{}",
    "{\"a\":1}",
    "[1,2",
    "null",
    "\u{0}",
    "\u{fffd}",
    "🦀🦀",
    "e\u{301}",
    "\u{202e}rtl",
    "call_1",
    "call_1::sig",
    "::",
    "get_weather",
];

/// Object keys: the fields of every dialect plus random ones.
const KEYS: &[&str] = &[
    "model",
    "provider",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "name",
    "tool_calls",
    "tool_call_id",
    "function",
    "arguments",
    "id",
    "index",
    "image_url",
    "url",
    "detail",
    "input_audio",
    "file",
    "tools",
    "tool_choice",
    "parameters",
    "properties",
    "items",
    "required",
    "enum",
    "anyOf",
    "$ref",
    "$defs",
    "description",
    "stream",
    "stream_options",
    "include_usage",
    "params",
    "fallbacks",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "seed",
    "logprobs",
    "top_logprobs",
    "response_format",
    "json_schema",
    "schema",
    "reasoning_effort",
    "prompt",
    "input",
    "dimensions",
    "encoding_format",
    "system",
    "source",
    "media_type",
    "data",
    "input_schema",
    "tool_use_id",
    "is_error",
    "thinking",
    "budget_tokens",
    "signature",
    "cache_control",
    "metadata",
    "stop_sequences",
    "contents",
    "parts",
    "systemInstruction",
    "inlineData",
    "mimeType",
    "fileData",
    "fileUri",
    "functionCall",
    "functionResponse",
    "response",
    "args",
    "functionDeclarations",
    "parametersJsonSchema",
    "toolConfig",
    "functionCallingConfig",
    "mode",
    "allowedFunctionNames",
    "generationConfig",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "thinkingBudget",
    "includeThoughts",
    "safetySettings",
    "requests",
    "taskType",
    "outputDimensionality",
    "generateContentRequest",
    "candidates",
    "finishReason",
    "usageMetadata",
    "promptFeedback",
    "blockReason",
    "choices",
    "delta",
    "message",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "object",
    "embedding",
    "error",
    "stop_reason",
    "content_block",
    "content_block_delta",
    "partial_json",
    "input_tokens",
    "output_tokens",
    "tool_plan",
    "billed_units",
    "tokens",
    "embeddings",
    "float",
    "values",
    "🦀",
    "",
];

/// A string: mostly dialect words and short unicode, sometimes control characters, invalid
/// surrogate escapes' replacement, or a huge one.
pub fn arb_string() -> BoxedStrategy<String> {
    prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        4 => "\\PC{0,12}",
        2 => "[a-z_/:.-]{0,16}",
        1 => any::<String>(),
        1 => (0usize..200_000, proptest::sample::select(&["x", "é", "🦀", "\"", "\\"][..]))
            .prop_map(|(n, s)| s.repeat(n.min(200_000 / s.len()))),
    ]
    .boxed()
}

/// Object keys, weighted towards real field names.
pub fn arb_key() -> BoxedStrategy<String> {
    prop_oneof![
        5 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
    .boxed()
}

/// A JSON number: integer edges, huge and negative values, fractions.
pub fn arb_number() -> BoxedStrategy<Value> {
    prop_oneof![
        proptest::sample::select(vec![
            i64::MIN,
            i64::MAX,
            -1,
            0,
            1,
            2,
            255,
            256,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
        ])
        .prop_map(|n| json!(n)),
        proptest::sample::select(&[u64::MAX, u64::MAX - 1, 1 << 53, (1 << 53) + 1][..])
            .prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        proptest::sample::select(vec![
            0.5,
            -0.5,
            -0.0,
            1e308,
            -1e308,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            2.0,
            1e20,
            -1e20,
            4_294_967_296.5,
        ])
        .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-3.0f64..3.0).prop_map(|f| json!(f)),
        (0u32..5000).prop_map(|n| json!(n)),
    ]
    .boxed()
}

/// A count as valid bodies carry it (a small non-negative integer), rarely any number.
pub fn num() -> BoxedStrategy<Value> {
    prop_oneof![12 => (0u32..5000).prop_map(|n| json!(n)), 1 => arb_number()].boxed()
}

/// A sampling parameter as valid bodies carry it (0 to 2), rarely any number.
pub fn unit() -> BoxedStrategy<Value> {
    prop_oneof![12 => (0.0f64..2.0).prop_map(|f| json!(f)), 1 => arb_number()].boxed()
}

/// A JSON scalar.
pub fn arb_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => arb_number(),
        4 => arb_string().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value: scalars, arrays and objects nested a few levels.
pub fn arb_json() -> BoxedStrategy<Value> {
    arb_scalar()
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((arb_key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A small JSON value (for slots where big ones only slow the run down).
pub fn arb_small_json() -> BoxedStrategy<Value> {
    arb_scalar()
        .prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec((arb_key(), inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value nested `depth` levels deep (arrays and objects alternating), wrapping `leaf`.
pub fn deep(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for i in 0..depth {
        v = if i % 2 == 0 {
            Value::Array(vec![v])
        } else {
            json!({"type": "object", "properties": {"a": v}, "items": {"x": 1}})
        };
    }
    v
}

/// A JSON Schema for a tool: real keywords in random combinations, or any JSON.
pub fn arb_schema() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        proptest::sample::select(
            &[
                "string", "number", "integer", "boolean", "null", "STRING", "NUMBER", "BOOLEAN",
                "weird", "",
            ][..]
        )
        .prop_map(|t| json!({"type": t})),
        proptest::collection::vec(arb_scalar(), 0..4).prop_map(|e| json!({"enum": e})),
        arb_small_json(),
        Just(json!({"$ref": "#/$defs/missing"})),
        Just(json!({"type": ["string", "null"]})),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                proptest::collection::vec((arb_key(), inner.clone()), 0..4),
                proptest::collection::vec(arb_key(), 0..3),
                prop_oneof![Just("object"), Just("OBJECT"), Just("")],
            )
                .prop_map(|(props, req, t)| {
                    let props: Map<String, Value> = props.into_iter().collect();
                    json!({"type": t, "properties": props, "required": req})
                }),
            inner
                .clone()
                .prop_map(|i| json!({"type": "array", "items": i})),
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"anyOf": v})),
            (inner.clone(), inner).prop_map(
                |(a, b)| json!({"$defs": {"missing": a}, "oneOf": [b], "nullable": true})
            ),
        ]
    })
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Mutation of valid bodies
// ---------------------------------------------------------------------------------------------

/// One mutation: which node (an index into the node list, modulo its length), what to do and
/// the value to use.
#[derive(Debug, Clone)]
pub struct Mutation {
    node: usize,
    op: u8,
    key: String,
    value: Value,
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    (any::<usize>(), 0u8..6, arb_key(), arb_json()).prop_map(|(node, op, key, value)| Mutation {
        node,
        op,
        key,
        value,
    })
}

/// Paths (object keys and array indexes) of every node under `v`, `v` itself first.
fn paths(v: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(PathStep::Index(i));
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                prefix.push(PathStep::Key(k.clone()));
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (PathStep::Key(k), Value::Object(o)) => o.get_mut(k)?,
            (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies `m` to `v`: replace a node, insert a key, remove a key or element, wrap a node in
/// an array, turn it into a string, or duplicate an array element.
fn mutate(v: &mut Value, m: Mutation) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = &all[m.node % all.len()];
    let Some(node) = node_mut(v, path) else {
        return;
    };
    match m.op {
        0 => *node = m.value,
        1 => match node {
            Value::Object(o) => {
                o.insert(m.key, m.value);
            }
            Value::Array(a) => a.push(m.value),
            other => *other = m.value,
        },
        2 => match node {
            Value::Object(o) => {
                let k = o.keys().nth(m.node % o.len().max(1)).cloned();
                if let Some(k) = k {
                    o.remove(&k);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = m.node % a.len();
                a.remove(i);
            }
            other => *other = Value::Null,
        },
        3 => *node = Value::Array(vec![node.take()]),
        4 => *node = Value::String(node.to_string()),
        _ => {
            if let Value::Array(a) = node
                && let Some(x) = a.first().cloned()
            {
                a.push(x);
            } else {
                *node = json!({m.key: node.take()});
            }
        }
    }
}

/// `valid`, then one to three random mutations.
pub fn mutated(valid: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (valid, proptest::collection::vec(arb_mutation(), 1..4))
        .prop_map(|(mut v, ms)| {
            for m in ms {
                mutate(&mut v, m);
            }
            v
        })
        .boxed()
}

/// `valid` as is, mutated, or replaced by arbitrary JSON.
pub fn near_valid(valid: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        3 => valid.clone(),
        4 => mutated(valid),
        1 => arb_json(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Near-valid request bodies
// ---------------------------------------------------------------------------------------------

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 1 => s.prop_map(Some)].boxed()
}

/// Inserts `k: v` into `o` when `v` is present.
fn put(o: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(k.to_owned(), v);
    }
}

fn role() -> BoxedStrategy<Value> {
    prop_oneof![
        30 => proptest::sample::select(&["user", "assistant", "system", "developer", "tool"][..])
            .prop_map(|r| json!(r)),
        1 => proptest::sample::select(&["function", "chatbot", "model", "USER", ""][..])
            .prop_map(|r| json!(r)),
        1 => arb_scalar(),
    ]
    .boxed()
}

fn openai_part() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => arb_string().prop_map(|t| json!({"type": "text", "text": t})),
        6 => (arb_string(), opt(arb_string())).prop_map(|(u, d)| {
            json!({"type": "image_url", "image_url": {"url": u, "detail": d}})
        }),
        1 => (arb_string(), arb_string())
            .prop_map(|(d, f)| json!({"type": "input_audio", "input_audio": {"data": d, "format": f}})),
        1 => (arb_string(), arb_string()).prop_map(|(d, n)| {
            json!({"type": "file", "file": {"file_data": d, "filename": n}})
        }),
        1 => (arb_string(), arb_small_json()).prop_map(|(t, v)| json!({"type": t, "text": v})),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn openai_content() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => arb_string().prop_map(Value::String),
        9 => proptest::collection::vec(openai_part(), 0..4).prop_map(Value::Array),
        1 => Just(Value::Null),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn openai_tool_call() -> BoxedStrategy<Value> {
    (
        opt(arb_string()),
        arb_string(),
        prop_oneof![
            arb_small_json().prop_map(|v| v.to_string()),
            arb_string(),
            Just("{\"city\":\"Paris\"}".to_owned()),
        ],
        opt(0u32..4),
    )
        .prop_map(|(id, name, args, index)| {
            json!({"id": id, "type": "function", "index": index,
                "function": {"name": name, "arguments": args}})
        })
        .boxed()
}

fn openai_message() -> BoxedStrategy<Value> {
    (
        role(),
        opt(openai_content()),
        opt(arb_string()),
        opt(proptest::collection::vec(openai_tool_call(), 0..3)),
        opt(arb_string()),
    )
        .prop_map(|(role, content, name, calls, call_id)| {
            let mut m = Map::new();
            m.insert("role".into(), role);
            put(&mut m, "content", content);
            put(&mut m, "name", name.map(Value::String));
            put(&mut m, "tool_calls", calls.map(Value::Array));
            put(&mut m, "tool_call_id", call_id.map(Value::String));
            Value::Object(m)
        })
        .boxed()
}

fn openai_tool() -> BoxedStrategy<Value> {
    (
        arb_string(),
        opt(arb_string()),
        opt(arb_schema()),
        opt(any::<bool>()),
    )
        .prop_map(|(name, desc, params, strict)| {
            json!({"type": "function", "function": {"name": name, "description": desc,
                "parameters": params, "strict": strict}})
        })
        .boxed()
}

fn openai_tool_choice() -> BoxedStrategy<Value> {
    prop_oneof![
        proptest::sample::select(&["auto", "none", "required", "any", "bogus"][..])
            .prop_map(|c| json!(c)),
        arb_string().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
        arb_small_json(),
    ]
    .boxed()
}

fn model_name() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => Just(json!("mock/echo")),
        1 => proptest::sample::select(&["mock/", "/echo", "mock", "", "mock/echo/extra"][..])
            .prop_map(|m| json!(m)),
        1 => arb_scalar(),
    ]
    .boxed()
}

/// Parameters every OpenAI-shaped body may carry, random in type and value.
fn openai_params() -> BoxedStrategy<Map<String, Value>> {
    (
        opt(unit()),
        opt(unit()),
        opt(num()),
        opt(prop_oneof![4 => Just(json!(1)), 1 => num()]),
        opt(prop_oneof![
            arb_string().prop_map(Value::String),
            proptest::collection::vec(arb_string().prop_map(Value::String), 0..5)
                .prop_map(Value::Array),
            arb_small_json(),
        ]),
        opt(num()),
        opt(prop_oneof![
            Just(json!({"type": "json_object"})),
            arb_schema().prop_map(
                |s| json!({"type": "json_schema", "json_schema": {"name": "x", "schema": s}})
            ),
            arb_small_json(),
        ]),
        opt(proptest::sample::select(
            &["low", "medium", "high", "minimal", "none", "x"][..],
        )),
        opt(prop_oneof![
            4 => any::<bool>().prop_map(Value::Bool),
            1 => arb_small_json(),
        ]),
        opt(proptest::collection::vec(
            (arb_key(), arb_small_json()),
            0..3,
        )),
    )
        .prop_map(
            |(temp, top_p, max_tokens, n, stop, seed, rf, effort, logprobs, extra)| {
                let mut m = Map::new();
                put(&mut m, "temperature", temp);
                put(&mut m, "top_p", top_p);
                put(&mut m, "max_tokens", max_tokens);
                put(&mut m, "n", n);
                put(&mut m, "stop", stop);
                put(&mut m, "seed", seed);
                put(&mut m, "response_format", rf);
                put(&mut m, "reasoning_effort", effort.map(|e| json!(e)));
                put(&mut m, "logprobs", logprobs);
                for (k, v) in extra.into_iter().flatten() {
                    m.insert(k, v);
                }
                m
            },
        )
        .boxed()
}

fn fallbacks() -> BoxedStrategy<Value> {
    proptest::collection::vec(
        prop_oneof![
            Just(json!("mock/echo")),
            arb_string().prop_map(Value::String),
            (arb_string(), arb_string()).prop_map(|(p, m)| json!({"provider": p, "model": m})),
            arb_small_json(),
        ],
        0..3,
    )
    .prop_map(Value::Array)
    .boxed()
}

/// A valid-looking `/v1/chat/completions` body (model `mock/echo` most of the time).
pub fn openai_chat_valid() -> BoxedStrategy<Value> {
    (
        model_name(),
        proptest::collection::vec(openai_message(), 1..5),
        openai_params(),
        opt(proptest::collection::vec(openai_tool(), 0..3)),
        opt(openai_tool_choice()),
        opt(any::<bool>()),
        opt(arb_small_json()),
        opt(fallbacks()),
        opt(proptest::collection::vec(
            (arb_key(), arb_small_json()),
            0..3,
        )),
    )
        .prop_map(
            |(model, messages, params, tools, choice, stream, stream_opts, fb, nested)| {
                let mut m = params;
                m.insert("model".into(), model);
                m.insert("messages".into(), Value::Array(messages));
                put(&mut m, "tools", tools.map(Value::Array));
                put(&mut m, "tool_choice", choice);
                put(&mut m, "stream", stream.map(Value::Bool));
                put(&mut m, "stream_options", stream_opts);
                put(&mut m, "fallbacks", fb);
                put(
                    &mut m,
                    "params",
                    nested.map(|kv| Value::Object(kv.into_iter().collect())),
                );
                Value::Object(m)
            },
        )
        .boxed()
}

/// A valid-looking `/v1/completions` body.
pub fn openai_text_valid() -> BoxedStrategy<Value> {
    (
        model_name(),
        prop_oneof![
            arb_string().prop_map(Value::String),
            proptest::collection::vec(arb_scalar(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(proptest::collection::vec(num(), 0..4), 0..3)
                .prop_map(|v| json!(v)),
        ],
        any::<bool>(),
        openai_params(),
    )
        .prop_map(|(model, prompt, text_key, mut m)| {
            m.insert("model".into(), model);
            m.insert((if text_key { "text" } else { "prompt" }).into(), prompt);
            Value::Object(m)
        })
        .boxed()
}

/// A valid-looking `/v1/embeddings` body.
pub fn openai_embed_valid() -> BoxedStrategy<Value> {
    (
        model_name(),
        prop_oneof![
            arb_string().prop_map(Value::String),
            proptest::collection::vec(arb_string(), 0..4).prop_map(|v| json!(v)),
            proptest::collection::vec(num(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(proptest::collection::vec(any::<i64>(), 0..4), 0..3)
                .prop_map(|v| json!(v)),
            arb_small_json(),
        ],
        opt(num()),
        opt(proptest::sample::select(
            &["float", "base64", "int8", ""][..],
        )),
    )
        .prop_map(|(model, input, dims, enc)| {
            let mut m = Map::new();
            m.insert("model".into(), model);
            m.insert("input".into(), input);
            put(&mut m, "dimensions", dims);
            put(&mut m, "encoding_format", enc.map(|e| json!(e)));
            Value::Object(m)
        })
        .boxed()
}

fn anthropic_source() -> BoxedStrategy<Value> {
    prop_oneof![
        (arb_string(), arb_string())
            .prop_map(|(mt, d)| json!({"type": "base64", "media_type": mt, "data": d})),
        arb_string().prop_map(|u| json!({"type": "url", "url": u})),
        (arb_string(), arb_string())
            .prop_map(|(mt, d)| json!({"type": "text", "media_type": mt, "data": d})),
        arb_string().prop_map(|f| json!({"type": "file", "file_id": f})),
        arb_small_json().prop_map(|c| json!({"type": "content", "content": c})),
        arb_small_json(),
    ]
    .boxed()
}

fn cache_control() -> BoxedStrategy<Option<Value>> {
    opt(prop_oneof![
        Just(json!({"type": "ephemeral"})),
        Just(json!({"type": "ephemeral", "ttl": "1h"})),
        arb_small_json(),
    ])
}

fn anthropic_block() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (arb_string(), cache_control())
            .prop_map(|(t, cc)| json!({"type": "text", "text": t, "cache_control": cc})),
        2 => anthropic_source().prop_map(|s| json!({"type": "image", "source": s})),
        1 => (anthropic_source(), opt(arb_string()))
            .prop_map(|(s, t)| json!({"type": "document", "source": s, "title": t})),
        2 => (arb_string(), arb_string(), arb_small_json())
            .prop_map(|(id, n, i)| json!({"type": "tool_use", "id": id, "name": n, "input": i})),
        2 => (
            arb_string(),
            opt(prop_oneof![
                arb_string().prop_map(Value::String),
                proptest::collection::vec(
                    arb_string().prop_map(|t| json!({"type": "text", "text": t})),
                    0..3
                )
                .prop_map(Value::Array),
                arb_small_json(),
            ]),
            opt(any::<bool>())
        )
            .prop_map(|(id, c, e)| {
                json!({"type": "tool_result", "tool_use_id": id, "content": c, "is_error": e})
            }),
        1 => (arb_string(), arb_string())
            .prop_map(|(t, s)| json!({"type": "thinking", "thinking": t, "signature": s})),
        1 => arb_string().prop_map(|d| json!({"type": "redacted_thinking", "data": d})),
        1 => (arb_string(), arb_small_json()).prop_map(|(t, v)| json!({"type": t, "x": v})),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn anthropic_content() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => arb_string().prop_map(Value::String),
        12 => proptest::collection::vec(anthropic_block(), 0..4).prop_map(Value::Array),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn anthropic_tool() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => (arb_string(), opt(arb_string()), opt(arb_schema()), cache_control()).prop_map(
            |(n, d, s, cc)| json!({"name": n, "description": d, "input_schema": s,
                "cache_control": cc})
        ),
        1 => (
            proptest::sample::select(&[
                "web_search_20250305", "bash_20250124", "text_editor_20250124", "custom", "x"
            ][..]),
            arb_string()
        )
            .prop_map(|(t, n)| json!({"type": t, "name": n, "max_uses": 3})),
        1 => arb_small_json(),
    ]
    .boxed()
}

/// A valid-looking Anthropic `/v1/messages` body.
pub fn anthropic_valid() -> BoxedStrategy<Value> {
    (
        model_name(),
        proptest::collection::vec(
            (
                prop_oneof![
                    5 => Just(json!("user")),
                    5 => Just(json!("assistant")),
                    1 => role(),
                ],
                anthropic_content(),
            )
                .prop_map(|(r, c)| json!({"role": r, "content": c})),
            0..5,
        ),
        prop_oneof![1 => Just(None), 10 => num().prop_map(Some)],
        opt(anthropic_content()),
        opt(proptest::collection::vec(anthropic_tool(), 0..3)),
        opt(prop_oneof![
            4 => proptest::sample::select(&["auto", "any", "none"][..])
                .prop_map(|t| json!({"type": t})),
            4 => arb_string().prop_map(|n| json!({"type": "tool", "name": n})),
            1 => arb_small_json(),
        ]),
        opt(prop_oneof![
            4 => num().prop_map(|b| json!({"type": "enabled", "budget_tokens": b})),
            4 => Just(json!({"type": "disabled"})),
            1 => arb_small_json(),
        ]),
        opt(any::<bool>()),
        (opt(unit()), opt(unit()), opt(num())),
        opt(proptest::collection::vec(arb_string(), 0..3)),
        opt(fallbacks()),
    )
        .prop_map(
            |(model, msgs, max, system, tools, choice, thinking, stream, nums, stops, fb)| {
                let mut m = Map::new();
                m.insert("model".into(), model);
                m.insert("messages".into(), Value::Array(msgs));
                put(&mut m, "max_tokens", max);
                put(&mut m, "system", system);
                put(&mut m, "tools", tools.map(Value::Array));
                put(&mut m, "tool_choice", choice);
                put(&mut m, "thinking", thinking);
                put(&mut m, "stream", stream.map(Value::Bool));
                put(&mut m, "temperature", nums.0);
                put(&mut m, "top_p", nums.1);
                put(&mut m, "top_k", nums.2);
                put(&mut m, "stop_sequences", stops.map(|s| json!(s)));
                put(&mut m, "fallbacks", fb);
                Value::Object(m)
            },
        )
        .boxed()
}

fn gemini_part() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => arb_string().prop_map(|t| json!({"text": t})),
        1 => (arb_string(), any::<bool>(), opt(arb_string()))
            .prop_map(|(t, th, sig)| json!({"text": t, "thought": th, "thoughtSignature": sig})),
        2 => (arb_string(), arb_string())
            .prop_map(|(m, d)| json!({"inlineData": {"mimeType": m, "data": d}})),
        1 => (arb_string(), arb_string())
            .prop_map(|(m, u)| json!({"fileData": {"mimeType": m, "fileUri": u}})),
        2 => (arb_string(), arb_small_json(), opt(arb_string()))
            .prop_map(|(n, a, id)| json!({"functionCall": {"name": n, "args": a, "id": id}})),
        2 => (arb_string(), arb_small_json(), opt(arb_string())).prop_map(
            |(n, r, id)| json!({"functionResponse": {"name": n, "response": r, "id": id}})
        ),
        1 => (arb_string(), arb_string()).prop_map(
            |(l, c)| json!({"executableCode": {"language": l, "code": c}})
        ),
        1 => (arb_string(), arb_string()).prop_map(
            |(o, out)| json!({"codeExecutionResult": {"outcome": o, "output": out}})
        ),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn gemini_content() -> BoxedStrategy<Value> {
    (
        opt(prop_oneof![
            4 => proptest::sample::select(&["user", "model"][..]).prop_map(|r| json!(r)),
            1 => proptest::sample::select(&["function", "tool", "system", ""][..])
                .prop_map(|r| json!(r)),
            1 => arb_scalar(),
        ]),
        proptest::collection::vec(gemini_part(), 0..4),
    )
        .prop_map(|(role, parts)| {
            let mut m = Map::new();
            put(&mut m, "role", role);
            m.insert("parts".into(), Value::Array(parts));
            Value::Object(m)
        })
        .boxed()
}

fn gemini_tool() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::collection::vec(
            (arb_string(), opt(arb_string()), opt(arb_schema()), opt(arb_schema()), any::<bool>())
                .prop_map(|(n, d, p, r, json_schema)| {
                    let key = if json_schema { "parametersJsonSchema" } else { "parameters" };
                    json!({"name": n, "description": d, key: p, "responseJsonSchema": r})
                }),
            0..3
        )
        .prop_map(|f| json!({"functionDeclarations": f})),
        1 => Just(json!({"googleSearch": {}})),
        1 => Just(json!({"codeExecution": {}})),
        1 => arb_small_json(),
    ]
    .boxed()
}

fn gemini_generation_config() -> BoxedStrategy<Value> {
    (
        (opt(unit()), opt(unit()), opt(num())),
        (opt(num()), opt(num())),
        opt(proptest::collection::vec(arb_string(), 0..3)),
        opt(proptest::sample::select(
            &["application/json", "text/plain", "text/x.enum", "x"][..],
        )),
        opt(arb_schema()),
        opt(prop_oneof![
            (num(), any::<bool>())
                .prop_map(|(b, i)| json!({"thinkingBudget": b, "includeThoughts": i})),
            proptest::sample::select(&["LOW", "HIGH", "low", "x"][..])
                .prop_map(|l| json!({"thinkingLevel": l})),
            arb_small_json(),
        ]),
        opt(arb_small_json()),
    )
        .prop_map(
            |((t, p, k), (c, max), stops, mime, schema, thinking, extra)| {
                let mut m = Map::new();
                put(&mut m, "temperature", t);
                put(&mut m, "topP", p);
                put(&mut m, "topK", k);
                put(&mut m, "candidateCount", c);
                put(&mut m, "maxOutputTokens", max);
                put(&mut m, "stopSequences", stops.map(|s| json!(s)));
                put(&mut m, "responseMimeType", mime.map(|s| json!(s)));
                put(&mut m, "responseSchema", schema);
                put(&mut m, "thinkingConfig", thinking);
                put(&mut m, "responseLogprobs", extra);
                Value::Object(m)
            },
        )
        .boxed()
}

/// A valid-looking Gemini `generateContent` body.
pub fn gemini_valid() -> BoxedStrategy<Value> {
    (
        proptest::collection::vec(gemini_content(), 0..4),
        opt(gemini_content()),
        opt(proptest::collection::vec(gemini_tool(), 0..3)),
        opt(prop_oneof![
            (
                proptest::sample::select(&["AUTO", "ANY", "NONE", "VALIDATED", "x"][..]),
                opt(proptest::collection::vec(arb_string(), 0..3))
            )
                .prop_map(|(mode, names)| json!({"functionCallingConfig":
                    {"mode": mode, "allowedFunctionNames": names}})),
            arb_small_json(),
        ]),
        opt(gemini_generation_config()),
        opt(proptest::collection::vec(
            (arb_string(), arb_string()).prop_map(|(c, t)| json!({"category": c, "threshold": t})),
            0..2,
        )),
        opt(arb_string()),
    )
        .prop_map(|(contents, system, tools, tc, gc, safety, cached)| {
            let mut m = Map::new();
            m.insert("contents".into(), Value::Array(contents));
            put(&mut m, "systemInstruction", system);
            put(&mut m, "tools", tools.map(Value::Array));
            put(&mut m, "toolConfig", tc);
            put(&mut m, "generationConfig", gc);
            put(&mut m, "safetySettings", safety.map(Value::Array));
            put(&mut m, "cachedContent", cached.map(Value::String));
            Value::Object(m)
        })
        .boxed()
}

/// A valid-looking Gemini `embedContent` request.
pub fn gemini_embed_valid() -> BoxedStrategy<Value> {
    (
        gemini_content(),
        opt(proptest::sample::select(
            &[
                "RETRIEVAL_QUERY",
                "RETRIEVAL_DOCUMENT",
                "SEMANTIC_SIMILARITY",
                "x",
            ][..],
        )),
        opt(arb_string()),
        opt(num()),
        opt(arb_string()),
    )
        .prop_map(|(content, task, title, dims, model)| {
            let mut m = Map::new();
            m.insert("content".into(), content);
            put(&mut m, "taskType", task.map(|t| json!(t)));
            put(&mut m, "title", title.map(Value::String));
            put(&mut m, "outputDimensionality", dims);
            put(&mut m, "model", model.map(Value::String));
            Value::Object(m)
        })
        .boxed()
}

/// A valid-looking Gemini `batchEmbedContents` body.
pub fn gemini_batch_embed_valid() -> BoxedStrategy<Value> {
    proptest::collection::vec(gemini_embed_valid(), 0..3)
        .prop_map(|r| json!({"requests": r}))
        .boxed()
}

/// A valid-looking Gemini `countTokens` body.
pub fn gemini_count_valid() -> BoxedStrategy<Value> {
    prop_oneof![
        proptest::collection::vec(gemini_content(), 0..3).prop_map(|c| json!({"contents": c})),
        gemini_valid().prop_map(|g| json!({"generateContentRequest": g})),
        Just(json!({})),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Near-valid upstream answers
// ---------------------------------------------------------------------------------------------

fn usage_openai() -> BoxedStrategy<Value> {
    (num(), num(), num())
        .prop_map(|(p, c, t)| {
            json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": t,
            "prompt_tokens_details": {"cached_tokens": p}})
        })
        .boxed()
}

/// An OpenAI chat completion (or chunk, with `delta`), text completion or embedding answer.
pub fn openai_response_valid() -> BoxedStrategy<Value> {
    let choice = (
        0u32..3,
        openai_message(),
        opt(proptest::sample::select(
            &["stop", "length", "tool_calls", "x"][..],
        )),
        any::<bool>(),
    )
        .prop_map(|(i, msg, fr, delta)| {
            let key = if delta { "delta" } else { "message" };
            json!({"index": i, key: msg, "finish_reason": fr, "text": "t", "logprobs": null})
        });
    prop_oneof![
        3 => (
            arb_string(),
            proptest::collection::vec(choice, 0..3),
            opt(usage_openai()),
            proptest::sample::select(&["chat.completion", "chat.completion.chunk",
                "text_completion", "list"][..])
        )
            .prop_map(|(id, choices, usage, object)| json!({"id": id, "object": object,
                "created": 1, "model": "m", "choices": choices, "usage": usage})),
        1 => proptest::collection::vec(
            proptest::collection::vec(num(), 0..4), 0..3
        )
        .prop_map(|vs| {
            let data: Vec<Value> = vs.into_iter().enumerate()
                .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
                .collect();
            json!({"object": "list", "data": data, "model": "m",
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        }),
        1 => arb_string().prop_map(|m| json!({"error": {"message": m, "type": "x", "code": 1}})),
    ]
    .boxed()
}

/// An Anthropic `message` answer.
pub fn anthropic_response_valid() -> BoxedStrategy<Value> {
    (
        arb_string(),
        proptest::collection::vec(anthropic_block(), 0..4),
        opt(proptest::sample::select(
            &[
                "end_turn",
                "max_tokens",
                "tool_use",
                "stop_sequence",
                "refusal",
                "x",
            ][..],
        )),
        (num(), num()),
    )
        .prop_map(|(id, content, stop, (i, o))| {
            json!({"id": id, "type": "message", "role": "assistant", "model": "claude",
                "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": {"input_tokens": i, "output_tokens": o,
                    "cache_read_input_tokens": i}})
        })
        .boxed()
}

/// One Anthropic stream event.
pub fn anthropic_event_valid() -> BoxedStrategy<Value> {
    prop_oneof![
        anthropic_response_valid().prop_map(|m| json!({"type": "message_start", "message": m})),
        (0u32..3, anthropic_block()).prop_map(
            |(i, b)| json!({"type": "content_block_start", "index": i, "content_block": b})
        ),
        (0u32..3, arb_string(), 0u8..4).prop_map(|(i, s, kind)| {
            let delta = match kind {
                0 => json!({"type": "text_delta", "text": s}),
                1 => json!({"type": "input_json_delta", "partial_json": s}),
                2 => json!({"type": "thinking_delta", "thinking": s}),
                _ => json!({"type": "signature_delta", "signature": s}),
            };
            json!({"type": "content_block_delta", "index": i, "delta": delta})
        }),
        (0u32..3).prop_map(|i| json!({"type": "content_block_stop", "index": i})),
        (
            opt(proptest::sample::select(&["end_turn", "tool_use", "x"][..])),
            num()
        )
            .prop_map(|(s, o)| json!({"type": "message_delta",
                "delta": {"stop_reason": s}, "usage": {"output_tokens": o}})),
        Just(json!({"type": "message_stop"})),
        Just(json!({"type": "ping"})),
        arb_string().prop_map(|m| json!({"type": "error",
            "error": {"type": "overloaded_error", "message": m}})),
    ]
    .boxed()
}

/// A Gemini `generateContent` answer (or stream event).
pub fn gemini_response_valid() -> BoxedStrategy<Value> {
    let candidate = (
        opt(0u32..3),
        opt(gemini_content()),
        opt(proptest::sample::select(
            &[
                "STOP",
                "MAX_TOKENS",
                "SAFETY",
                "MALFORMED_FUNCTION_CALL",
                "x",
            ][..],
        )),
    )
        .prop_map(|(i, c, fr)| json!({"index": i, "content": c, "finishReason": fr}));
    (
        proptest::collection::vec(candidate, 0..3),
        opt((num(), num(), num()).prop_map(|(p, c, t)| {
            json!({"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": t,
                "thoughtsTokenCount": c})
        })),
        opt(prop_oneof![
            Just(json!({"blockReason": "SAFETY"})),
            arb_small_json(),
        ]),
        opt(arb_string()),
    )
        .prop_map(|(candidates, usage, feedback, id)| {
            let mut m = Map::new();
            m.insert("candidates".into(), Value::Array(candidates));
            put(&mut m, "usageMetadata", usage);
            put(&mut m, "promptFeedback", feedback);
            put(&mut m, "responseId", id.map(Value::String));
            m.insert("modelVersion".into(), json!("gemini-x"));
            Value::Object(m)
        })
        .boxed()
}

/// A Cohere v2 chat answer, stream event or embed answer.
pub fn cohere_response_valid() -> BoxedStrategy<Value> {
    prop_oneof![
        (
            arb_string(),
            proptest::collection::vec(
                (arb_string(), arb_string()).prop_map(|(k, t)| json!({"type": k, "text": t,
                    "thinking": t})),
                0..3
            ),
            opt(proptest::collection::vec(openai_tool_call(), 0..2)),
            opt(proptest::sample::select(
                &["COMPLETE", "MAX_TOKENS", "TOOL_CALL", "x"][..]
            )),
            (num(), num()),
        )
            .prop_map(|(id, content, calls, fr, (i, o))| json!({"id": id,
                "finish_reason": fr, "message": {"role": "assistant", "content": content,
                    "tool_calls": calls, "tool_plan": "p"},
                "usage": {"billed_units": {"input_tokens": i, "output_tokens": o},
                    "tokens": {"input_tokens": o}, "cached_tokens": i}})),
        (
            proptest::sample::select(
                &[
                    "message-start",
                    "content-start",
                    "content-delta",
                    "content-end",
                    "tool-plan-delta",
                    "tool-call-start",
                    "tool-call-delta",
                    "tool-call-end",
                    "message-end",
                    "citation-start",
                    "x"
                ][..]
            ),
            opt(0u32..3),
            arb_small_json(),
            arb_string(),
        )
            .prop_map(
                |(t, i, v, s)| json!({"type": t, "index": i, "delta": {"message": {
                "content": {"type": "text", "text": s}, "tool_plan": s,
                "tool_calls": {"id": s, "function": {"name": s, "arguments": s}}},
                "finish_reason": s, "usage": v}})
            ),
        proptest::collection::vec(proptest::collection::vec(num(), 0..4), 0..3)
            .prop_map(|vs| json!({"id": "e", "embeddings": {"float": vs},
                "meta": {"billed_units": {"input_tokens": 2}}})),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Bodies as bytes
// ---------------------------------------------------------------------------------------------

fn as_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// `valid` bodies (mutated or not), arbitrary JSON, deeply nested JSON, truncated JSON and
/// random bytes, encoded.
pub fn body_bytes(valid: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => valid.clone().prop_map(|v| as_bytes(&v)),
        6 => mutated(valid.clone()).prop_map(|v| as_bytes(&v)),
        2 => arb_json().prop_map(|v| as_bytes(&v)),
        1 => (mutated(valid.clone()), any::<proptest::sample::Index>()).prop_map(
            move |(v, at)| {
                let b = as_bytes(&v);
                let n = at.index(b.len().max(1));
                b[..n.min(b.len())].to_vec()
            }
        ),
        1 => (valid, any::<proptest::sample::Index>(), any::<u8>()).prop_map(
            move |(v, at, byte)| {
                // One byte replaced: often invalid UTF-8 inside a string.
                let mut b = as_bytes(&v);
                if !b.is_empty() {
                    let i = at.index(b.len());
                    b[i] = byte | 0x80;
                }
                b
            }
        ),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (1usize..3000, any::<bool>()).prop_map(|(n, obj)| {
            let (open, close) = if obj { ("{\"a\":", "}") } else { ("[", "]") };
            let mut s = open.repeat(n);
            s.push('1');
            s.push_str(&close.repeat(n));
            s.into_bytes()
        }),
        1 => (40usize..126).prop_map(|n| as_bytes(&json!({"model": "mock/echo",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f",
                "parameters": deep(n, json!({"type": "string"}))}}],
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"responseSchema": deep(n, json!({"type": "STRING"}))}}))),
        1 => proptest::sample::select(vec![
            &b""[..], b" ", b"null", b"[]", b"{}", b"\"x\"", b"1e999", b"-0",
            b"{\"model\":\"mock/echo\"", b"\xef\xbb\xbf{}", b"{\"a\":\"\\ud800\"}",
            b"{\"model\":\"mock/echo\",\"model\":1}", b"\xff\xfe",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
    .boxed()
}
