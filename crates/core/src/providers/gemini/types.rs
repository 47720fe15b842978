//! Gemini API wire types (`v1beta`), written from Google's public API reference.
//!
//! They serialize *and* deserialize faithfully: the provider sends requests and reads
//! responses, and the Google-GenAI-compatible route reads requests and writes responses with
//! the same types. Every multi-word field is written in camelCase and also read in
//! snake_case, because Google's protobuf-JSON endpoints (and its SDKs) accept both. Objects
//! Google may grow keep unknown keys in a flattened `extra` map, so nothing is lost in a
//! round trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Reads an integer field that may arrive as an integral float (`5.0`) or a string: the
/// Python SDK types `topK` as a float, and protobuf JSON (which Google parses) accepts both
/// forms for integers, so a drop-in route must too.
fn lenient_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                #[expect(clippy::cast_possible_truncation, reason = "integral and in range")]
                let i = f as i64;
                i
            }
            _ => return Err(D::Error::custom(format!("expected an integer, got {n}"))),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}")))?,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "expected an integer, got {other}"
            )));
        }
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("integer {n} is out of range")))
}

/// `POST models/{model}:generateContent` and `:streamGenerateContent` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// The conversation, oldest first.
    #[serde(default)]
    pub contents: Vec<Content>,
    /// System prompt (text parts only).
    #[serde(
        default,
        alias = "system_instruction",
        skip_serializing_if = "Option::is_none"
    )]
    pub system_instruction: Option<Content>,
    /// Function declarations and built-in tools (`googleSearch`, `codeExecution`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    #[serde(
        default,
        alias = "tool_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_config: Option<ToolConfig>,
    /// Per-category blocking thresholds.
    #[serde(
        default,
        alias = "safety_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub safety_settings: Option<Vec<SafetySetting>>,
    /// Sampling and output settings.
    #[serde(
        default,
        alias = "generation_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_config: Option<GenerationConfig>,
    /// Name of a cached context (`cachedContents/…`) to prefix the prompt with.
    #[serde(
        default,
        alias = "cached_content",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_content: Option<String>,
    /// The model (normally in the URL path; optional in the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fields not named above (e.g. `labels`, `serviceTier`), kept as sent.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// One turn: a role and its parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// The parts, in order. Gemini omits them for an empty (e.g. blocked) candidate.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// `user` or `model`; absent in `systemInstruction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// One part of a turn. Google's `Part` is a union (exactly one data field is set) plus
/// metadata; a struct of options keeps unknown and future part kinds intact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Inline bytes (base64) with their MIME type.
    #[serde(
        default,
        alias = "inline_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub inline_data: Option<Blob>,
    /// A reference to a file by URI (uploaded file, YouTube or web URL).
    #[serde(default, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// A function call predicted by the model.
    #[serde(
        default,
        alias = "function_call",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_call: Option<FunctionCall>,
    /// A function's result, sent back to the model.
    #[serde(
        default,
        alias = "function_response",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_response: Option<FunctionResponse>,
    /// Code the model wrote for the code-execution tool.
    #[serde(
        default,
        alias = "executable_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub executable_code: Option<ExecutableCode>,
    /// Output of the code-execution tool.
    #[serde(
        default,
        alias = "code_execution_result",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_execution_result: Option<CodeExecutionResult>,
    /// True when the part is the model's thinking, not its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the model's thinking; Gemini 3 needs it echoed back on the
    /// function-call parts of the history.
    #[serde(
        default,
        alias = "thought_signature",
        skip_serializing_if = "Option::is_none"
    )]
    pub thought_signature: Option<String>,
    /// Clip and frame rate of a video part.
    #[serde(
        default,
        alias = "video_metadata",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_metadata: Option<Value>,
    /// Anything else (e.g. `partMetadata`, `mediaResolution`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }
}

/// Inline media.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// IANA MIME type, e.g. `image/png`.
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    /// Base64 bytes.
    pub data: String,
}

/// Media referenced by URI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    /// MIME type, when known.
    #[serde(default, alias = "mime_type", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// `https://generativelanguage.googleapis.com/v1beta/files/…`, a YouTube or web URL.
    #[serde(alias = "file_uri")]
    pub file_uri: String,
}

/// A function call predicted by the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Call id; Gemini usually leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name.
    pub name: String,
    /// Arguments as a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
}

/// A function's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    /// The id of the call this answers, when the call had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name (matches the call).
    pub name: String,
    /// The result; must be a JSON object.
    #[serde(default)]
    pub response: Map<String, Value>,
    /// Anything else (`parts`, `willContinue`, `scheduling`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Code generated for the code-execution tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutableCode {
    /// e.g. `PYTHON`.
    #[serde(default)]
    pub language: String,
    /// The source.
    #[serde(default)]
    pub code: String,
}

/// The result of running [`ExecutableCode`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeExecutionResult {
    /// e.g. `OUTCOME_OK`.
    #[serde(default)]
    pub outcome: String,
    /// stdout, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// One tool entry: function declarations, or a built-in tool in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Functions the model may call.
    #[serde(
        default,
        alias = "function_declarations",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
    /// Built-in tools (`googleSearch`, `codeExecution`, `urlContext`, …), kept as sent.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A function the model may call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    /// Function name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments in Google's OpenAPI-subset `Schema` (rejects e.g. `additionalProperties`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Arguments as standard JSON Schema (exclusive with `parameters`).
    #[serde(
        default,
        alias = "parameters_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub parameters_json_schema: Option<Value>,
    /// Anything else (`behavior`, `response`, `responseJsonSchema`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Tool settings shared by every tool of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Function-calling mode.
    #[serde(
        default,
        alias = "function_calling_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_calling_config: Option<FunctionCallingConfig>,
    /// Anything else (`retrievalConfig`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `AUTO`, `ANY`, `NONE` or `VALIDATED`, optionally limited to some functions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// The mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// With `ANY`: the functions the model may pick from.
    #[serde(
        default,
        alias = "allowed_function_names",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_function_names: Option<Vec<String>>,
}

/// One safety threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetySetting {
    /// e.g. `HARM_CATEGORY_HARASSMENT`.
    #[serde(default)]
    pub category: String,
    /// e.g. `BLOCK_NONE`.
    #[serde(default)]
    pub threshold: String,
    /// Anything else (`method`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Sampling and output settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// Up to 5 stop strings.
    #[serde(
        default,
        alias = "stop_sequences",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_sequences: Option<Vec<String>>,
    /// `text/plain`, `application/json` or `text/x.enum`.
    #[serde(
        default,
        alias = "response_mime_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_mime_type: Option<String>,
    /// Output schema in Google's OpenAPI-subset `Schema`.
    #[serde(
        default,
        alias = "response_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_schema: Option<Value>,
    /// Output schema as standard JSON Schema (exclusive with `responseSchema`).
    #[serde(
        default,
        alias = "response_json_schema",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_json_schema: Option<Value>,
    /// Output modalities, e.g. `["TEXT", "IMAGE"]`.
    #[serde(
        default,
        alias = "response_modalities",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_modalities: Option<Vec<String>>,
    /// Number of candidates.
    #[serde(
        deserialize_with = "lenient_int",
        default,
        alias = "candidate_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub candidate_count: Option<u32>,
    /// Output cap.
    #[serde(
        deserialize_with = "lenient_int",
        default,
        alias = "max_output_tokens",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, alias = "top_p", skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(
        default,
        deserialize_with = "lenient_int",
        alias = "top_k",
        skip_serializing_if = "Option::is_none"
    )]
    pub top_k: Option<u32>,
    /// Sampling seed.
    #[serde(
        default,
        deserialize_with = "lenient_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub seed: Option<i64>,
    /// Presence penalty (not every model accepts it).
    #[serde(
        default,
        alias = "presence_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty (not every model accepts it).
    #[serde(
        default,
        alias = "frequency_penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub frequency_penalty: Option<f64>,
    /// Return log probabilities of the chosen tokens.
    #[serde(
        default,
        alias = "response_logprobs",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_logprobs: Option<bool>,
    /// How many top alternatives per token (with `responseLogprobs`).
    #[serde(
        default,
        deserialize_with = "lenient_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub logprobs: Option<u32>,
    /// Thinking budget or level, and whether to return thought summaries.
    #[serde(
        default,
        alias = "thinking_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_config: Option<ThinkingConfig>,
    /// Anything else (`speechConfig`, `mediaResolution`, `imageConfig`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Thinking settings of 2.5+ models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    /// Return thought summaries as `thought: true` parts.
    #[serde(
        default,
        alias = "include_thoughts",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_thoughts: Option<bool>,
    /// Thinking tokens allowed (2.5 models; `0` off, `-1` dynamic).
    #[serde(
        deserialize_with = "lenient_int",
        default,
        alias = "thinking_budget",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_budget: Option<i64>,
    /// `minimal`/`low`/`medium`/`high` (Gemini 3 models).
    #[serde(
        default,
        alias = "thinking_level",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking_level: Option<String>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `generateContent` answer, and each event of `streamGenerateContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// The answers (one unless `candidateCount` asked for more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// Why the prompt was blocked, if it was.
    #[serde(
        default,
        alias = "prompt_feedback",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Token counts.
    #[serde(
        default,
        alias = "usage_metadata",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model version that answered.
    #[serde(
        default,
        alias = "model_version",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_version: Option<String>,
    /// Response id (the same on every event of one stream).
    #[serde(
        default,
        alias = "response_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_id: Option<String>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// One answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer's parts (absent when blocked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, …; absent mid-stream.
    #[serde(
        default,
        alias = "finish_reason",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish_reason: Option<String>,
    /// Candidate index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Safety ratings, as sent.
    #[serde(
        default,
        alias = "safety_ratings",
        skip_serializing_if = "Option::is_none"
    )]
    pub safety_ratings: Option<Value>,
    /// Average log probability of the candidate.
    #[serde(
        default,
        alias = "avg_logprobs",
        skip_serializing_if = "Option::is_none"
    )]
    pub avg_logprobs: Option<f64>,
    /// Per-token log probabilities (with `responseLogprobs`).
    #[serde(
        default,
        alias = "logprobs_result",
        skip_serializing_if = "Option::is_none"
    )]
    pub logprobs_result: Option<LogprobsResult>,
    /// Why generation stopped, in words (some finish reasons).
    #[serde(
        default,
        alias = "finish_message",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish_message: Option<String>,
    /// Anything else (`citationMetadata`, `groundingMetadata`, `tokenCount`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Feedback on the prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// Set when the prompt was blocked: `SAFETY`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `OTHER`, …
    #[serde(
        default,
        alias = "block_reason",
        skip_serializing_if = "Option::is_none"
    )]
    pub block_reason: Option<String>,
    /// Safety ratings of the prompt, as sent.
    #[serde(
        default,
        alias = "safety_ratings",
        skip_serializing_if = "Option::is_none"
    )]
    pub safety_ratings: Option<Value>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Token counts. `promptTokenCount` includes `cachedContentTokenCount`;
/// `totalTokenCount` = prompt + tool-use prompt + candidates + thoughts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Prompt tokens (cached ones included).
    #[serde(
        default,
        alias = "prompt_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_token_count: Option<u64>,
    /// Prompt tokens served from the context cache.
    #[serde(
        default,
        alias = "cached_content_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_content_token_count: Option<u64>,
    /// Output tokens of the answer (thoughts excluded).
    #[serde(
        default,
        alias = "candidates_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub candidates_token_count: Option<u64>,
    /// Tokens of tool-use prompts (e.g. search results).
    #[serde(
        default,
        alias = "tool_use_prompt_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_use_prompt_token_count: Option<u64>,
    /// Thinking tokens.
    #[serde(
        default,
        alias = "thoughts_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub thoughts_token_count: Option<u64>,
    /// Everything.
    #[serde(
        default,
        alias = "total_token_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_token_count: Option<u64>,
    /// Prompt tokens by modality.
    #[serde(
        default,
        alias = "prompt_tokens_details",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_tokens_details: Option<Vec<ModalityTokenCount>>,
    /// Anything else (`cacheTokensDetails`, `candidatesTokensDetails`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Tokens of one modality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModalityTokenCount {
    /// `TEXT`, `IMAGE`, `AUDIO`, `VIDEO`, `DOCUMENT`.
    #[serde(default)]
    pub modality: String,
    /// Token count.
    #[serde(default, alias = "token_count")]
    pub token_count: u64,
}

/// Per-token log probabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogprobsResult {
    /// For each step, the top alternatives.
    #[serde(default, alias = "top_candidates")]
    pub top_candidates: Vec<TopCandidates>,
    /// For each step, the chosen token.
    #[serde(default, alias = "chosen_candidates")]
    pub chosen_candidates: Vec<LogprobCandidate>,
    /// Anything else (`logProbabilitySum`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The top alternatives of one decoding step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopCandidates {
    /// Sorted by log probability, highest first.
    #[serde(default)]
    pub candidates: Vec<LogprobCandidate>,
}

/// One token and its log probability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogprobCandidate {
    /// The token text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token id.
    #[serde(default, alias = "token_id", skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    /// Its log probability.
    #[serde(
        default,
        alias = "log_probability",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_probability: Option<f64>,
}

/// `POST models/{model}:embedContent` body, and one entry of a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedContentRequest {
    /// `models/{model}`; required inside a batch and equal to the URL's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The text to embed (text parts only).
    pub content: Content,
    /// e.g. `RETRIEVAL_QUERY`, `SEMANTIC_SIMILARITY`.
    #[serde(default, alias = "task_type", skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Document title (with `RETRIEVAL_DOCUMENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Truncate the vector to this many dimensions.
    #[serde(
        deserialize_with = "lenient_int",
        default,
        alias = "output_dimensionality",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_dimensionality: Option<u32>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `POST models/{model}:batchEmbedContents` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchEmbedContentsRequest {
    /// One request per input.
    pub requests: Vec<EmbedContentRequest>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// One embedding vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentEmbedding {
    /// The vector.
    #[serde(default)]
    pub values: Vec<f64>,
}

/// `:embedContent` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedContentResponse {
    /// The vector.
    pub embedding: ContentEmbedding,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `:batchEmbedContents` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchEmbedContentsResponse {
    /// One vector per request, in order.
    #[serde(default)]
    pub embeddings: Vec<ContentEmbedding>,
    /// Anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `GET /v1beta/models` answer (one page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListModelsResponse {
    /// The models of this page.
    #[serde(default)]
    pub models: Vec<Model>,
    /// Token for the next page; absent on the last.
    #[serde(
        default,
        alias = "next_page_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_page_token: Option<String>,
}

/// One model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// `models/{id}`.
    pub name: String,
    /// Human-readable name.
    #[serde(
        default,
        alias = "display_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// e.g. `["generateContent", "countTokens"]`.
    #[serde(
        default,
        alias = "supported_generation_methods",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_generation_methods: Option<Vec<String>>,
    /// Anything else (`version`, `inputTokenLimit`, `outputTokenLimit`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: GoogleError,
}

/// A `google.rpc.Status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoogleError {
    /// The HTTP status.
    #[serde(default)]
    pub code: u16,
    /// Google's message.
    #[serde(default)]
    pub message: String,
    /// The canonical code name, e.g. `RESOURCE_EXHAUSTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Typed details (`google.rpc.RetryInfo`, `ErrorInfo`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_with_unknown_fields() {
        let v = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"inlineData": {"mimeType": "image/png", "data": "AAA"}},
                {"fileData": {"fileUri": "https://x/y.pdf", "mimeType": "application/pdf"}},
                {"text": "t", "thought": true, "thoughtSignature": "c2ln", "partMetadata": {"a": 1}}
            ]}, {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "s"}
            ]}, {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"x": 1}, "willContinue": false}}
            ]}],
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"},
                        "behavior": "BLOCKING"}]}, {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"temperature": 0.5, "topK": 3, "thinkingConfig": {"thinkingBudget": 0},
                                 "mediaResolution": "MEDIA_RESOLUTION_LOW"},
            "cachedContent": "cachedContents/1",
            "labels": {"team": "a"}
        });
        let r: GenerateContentRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.extra.get("labels"), Some(&json!({"team": "a"})));
        assert_eq!(
            r.generation_config.as_ref().unwrap().extra["mediaResolution"],
            "MEDIA_RESOLUTION_LOW"
        );
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn snake_case_is_read_too() {
        let r: GenerateContentRequest = serde_json::from_value(json!({
            "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "A"}}]}],
            "system_instruction": {"parts": [{"text": "s"}]},
            "generation_config": {"max_output_tokens": 5, "top_k": 2},
            "tool_config": {"function_calling_config": {"mode": "AUTO"}}
        }))
        .unwrap();
        assert!(r.system_instruction.is_some());
        let gc = r.generation_config.unwrap();
        assert_eq!((gc.max_output_tokens, gc.top_k), (Some(5), Some(2)));
        // Integral floats and strings are integers too (the Python SDK sends `topK: 5.0`).
        let gc: GenerationConfig =
            serde_json::from_value(json!({"topK": 5.0, "seed": "7", "candidateCount": 1})).unwrap();
        assert_eq!(
            (gc.top_k, gc.seed, gc.candidate_count),
            (Some(5), Some(7), Some(1))
        );
        assert!(serde_json::from_value::<GenerationConfig>(json!({"topK": 2.5})).is_err());
        assert!(serde_json::from_value::<GenerationConfig>(json!({"topK": -1})).is_err());
        assert_eq!(
            r.contents[0].parts[0]
                .inline_data
                .as_ref()
                .unwrap()
                .mime_type,
            "image/png"
        );
    }

    #[test]
    fn response_round_trips() {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]},
                "finishReason": "STOP", "index": 0, "avgLogprobs": -0.1,
                "citationMetadata": {"citationSources": []}}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]},
            "modelVersion": "gemini-2.0-flash", "responseId": "r1"
        });
        let r: GenerateContentResponse = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
        let blocked: GenerateContentResponse =
            serde_json::from_value(json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
        assert!(blocked.candidates.is_empty());
    }
}
