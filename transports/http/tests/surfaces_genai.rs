//! The Google GenAI surface (`/genai/...`) against the real binary and the mock upstream,
//! with a Gemini provider (same dialect: passthrough) and an OpenAI provider (translated).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod support;

use bifrost_mock_upstream::{MockConfig, MockServer};
use serde_json::{Value, json};
use support::{Gateway, client, post};

/// Same-dialect and other-dialect model paths.
const GEMINI: &str = "gemini-2.0-flash";
const OPENAI: &str = "openai/gpt-4o-mini";

fn config(upstream: &str, drop_unsupported: bool) -> Value {
    let net = json!({"base_url": upstream, "max_retries": 0});
    json!({
        "client": {"drop_unsupported_params": drop_unsupported},
        "providers": {
            "openai": {"keys": [{"value": "sk-openai", "models": [], "weight": 1}], "network_config": net},
            "gemini": {"keys": [{"value": "gk-gemini", "models": [], "weight": 1}], "network_config": net}
        }
    })
}

struct Env {
    mock: MockServer,
    gw: Gateway,
}

async fn env_with(drop_unsupported: bool) -> Env {
    let mock = MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let gw = Gateway::start(&config(&mock.url(), drop_unsupported));
    Env { mock, gw }
}

async fn env() -> Env {
    env_with(false).await
}

impl Env {
    fn url(&self, model: &str, method: &str) -> String {
        format!("{}/genai/v1beta/models/{model}:{method}", self.gw.url)
    }

    async fn generate(&self, model: &str, body: &Value) -> (u16, Value) {
        let (status, _, v) = post(&self.url(model, "generateContent"), body).await;
        (status, v)
    }

    /// The `data:` payloads of a stream, parsed, and the HTTP status.
    async fn stream(&self, model: &str, body: &Value) -> (u16, String, Vec<Value>) {
        let resp = client()
            .post(format!(
                "{}?alt=sse",
                self.url(model, "streamGenerateContent")
            ))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let events = support::sse_events(resp)
            .await
            .iter()
            .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("not JSON: {e}")))
            .collect();
        (status, ct, events)
    }

    /// Bodies the upstream received on `path`.
    fn upstream_bodies(&self, path_contains: &str) -> Vec<Value> {
        self.mock
            .state()
            .captured()
            .into_iter()
            .filter(|r| r.path.contains(path_contains))
            .map(|r| r.body)
            .collect()
    }
}

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

fn text_of(resp: &Value) -> String {
    resp["candidates"][0]["content"]["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != json!(true))
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn weather_tools() -> Value {
    json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}},
                       "required": ["location"]}}]}])
}

#[tokio::test]
async fn generate_content_on_both_dialects() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut body = user("hello genai");
        body["systemInstruction"] = json!({"parts": [{"text": "be brief"}]});
        body["generationConfig"] = json!({"temperature": 0.2, "maxOutputTokens": 64});
        let (status, v) = e.generate(model, &body).await;
        assert_eq!(status, 200, "{model}: {v}");
        assert_eq!(text_of(&v), "hello genai", "{model}");
        assert_eq!(v["candidates"][0]["finishReason"], "STOP", "{model}");
        assert_eq!(v["candidates"][0]["content"]["role"], "model");
        let usage = &v["usageMetadata"];
        assert!(
            usage["promptTokenCount"].as_u64().unwrap() > 0,
            "{model}: {v}"
        );
        assert!(usage["totalTokenCount"].as_u64().unwrap() > 0, "{model}");
    }
    // The OpenAI upstream got a translated chat request; the system prompt came first.
    let sent = e.upstream_bodies("/chat/completions");
    assert_eq!(sent[0]["model"], "gpt-4o-mini");
    assert_eq!(
        sent[0]["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(sent[0]["max_completion_tokens"], 64);
    assert!(
        sent[0].get("stream_options").is_none(),
        "only streams ask for usage"
    );
}

#[tokio::test]
async fn gemini_upstream_gets_the_body_as_sent_and_answers_as_sent() {
    let e = env().await;
    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                                         "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                "response": {"content": "sunny"}, "willContinue": false}}]}
        ],
        "tools": weather_tools(),
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"topK": 3, "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 512},
                             "mediaResolution": "MEDIA_RESOLUTION_LOW"},
        "labels": {"team": "a"}
    });
    let (status, v) = e.generate(GEMINI, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(text_of(&v), "tool said: sunny");
    // The thought part and Gemini's own response id come back untouched.
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["thought"], true);
    assert!(
        v["responseId"]
            .as_str()
            .unwrap()
            .starts_with("gemini-mock-")
    );
    let sent = e.upstream_bodies(":generateContent");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0], body,
        "the Gemini upstream receives the caller's body"
    );
    let captured = e.mock.state().captured();
    assert_eq!(
        captured[0].header("x-goog-api-key"),
        Some("gk-gemini"),
        "the gateway's key, not the caller's"
    );
}

#[tokio::test]
async fn stream_on_both_dialects() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut body = user("one two three four five");
        body["mock"] = json!({"chunks": 4});
        let (status, ct, events) = e.stream(model, &body).await;
        assert_eq!(status, 200, "{model}");
        assert!(ct.starts_with("text/event-stream"), "{model}: {ct}");
        assert!(events.len() >= 2, "{model}: {events:?}");
        let text: String = events.iter().map(text_of).collect();
        assert_eq!(text, "one two three four five", "{model}");
        let last = events.last().unwrap();
        assert_eq!(
            last["candidates"][0]["finishReason"], "STOP",
            "{model}: {last}"
        );
        assert!(
            last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0,
            "{model}: {last}"
        );
        assert!(events.iter().all(|ev| ev.get("error").is_none()));
    }
    let sent = e.upstream_bodies("/chat/completions");
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(sent[0]["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tool_call_round_trip_on_both_dialects() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut first = user("weather in Paris?");
        first["tools"] = weather_tools();
        let (status, v) = e.generate(model, &first).await;
        assert_eq!(status, 200, "{model}: {v}");
        let part = &v["candidates"][0]["content"]["parts"][0];
        assert_eq!(part["functionCall"]["name"], "get_weather", "{model}: {v}");
        assert_eq!(part["functionCall"]["args"], json!({"location": "Paris"}));
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");

        // The caller sends the call back with its result.
        let call = part.clone();
        let second = json!({
            "contents": [
                first["contents"][0],
                {"role": "model", "parts": [call]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                    "response": {"content": "sunny, 21C"}}}]}
            ],
            "tools": weather_tools()
        });
        let (status, v) = e.generate(model, &second).await;
        assert_eq!(status, 200, "{model}: {v}");
        let said = text_of(&v);
        assert!(said.starts_with("tool said: "), "{model}: {said}");
        assert!(said.contains("sunny, 21C"), "{model}: {said}");
    }
    // The OpenAI upstream saw a tool call and its result linked by id.
    let sent = e.upstream_bodies("/chat/completions");
    let msgs = &sent[1]["messages"];
    let id = msgs[1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], id);
    assert_eq!(
        sent[1]["tools"][0]["function"]["parameters"]["properties"]["location"]["type"], "string",
        "Google's schema types become JSON Schema"
    );
}

#[tokio::test]
async fn streamed_tool_call_arrives_whole() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut body = user("weather?");
        body["tools"] = weather_tools();
        // The OpenAI mock splits the arguments over many deltas.
        body["mock"] = json!({"chunks": 7});
        let (status, _, events) = e.stream(model, &body).await;
        assert_eq!(status, 200);
        let calls: Vec<&Value> = events
            .iter()
            .flat_map(|ev| ev["candidates"][0]["content"]["parts"].as_array())
            .flatten()
            .filter(|p| p.get("functionCall").is_some())
            .collect();
        assert_eq!(calls.len(), 1, "{model}: {events:?}");
        assert_eq!(
            calls[0]["functionCall"]["args"],
            json!({"location": "Paris"})
        );
        let last = events.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{model}");
    }
}

#[tokio::test]
async fn upstream_errors_answer_in_googles_shape() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut body = user("x");
        body["mock"] = json!({"status": 429, "retry_after": 1});
        let (status, headers, v) = post(&e.url(model, "generateContent"), &body).await;
        assert_eq!(status, 429, "{model}: {v}");
        assert_eq!(v["error"]["code"], 429);
        assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mock error 429")
        );
        assert_eq!(headers["retry-after"], "1");
        // Before the first chunk a stream fails with a status too.
        body["mock"] = json!({"status": 503});
        let url = format!("{}?alt=sse", e.url(model, "streamGenerateContent"));
        let (status, _, v) = post(&url, &body).await;
        assert_eq!(status, 503, "{model}");
        assert_eq!(v["error"]["status"], "UNAVAILABLE", "{model}: {v}");
    }
}

#[tokio::test]
async fn mid_stream_failure_is_an_error_event_then_the_end() {
    let e = env().await;
    for model in [GEMINI, OPENAI] {
        let mut body = user("a b c d e f g h");
        body["mock"] = json!({"chunks": 8, "cut_after": 2});
        let (status, _, events) = e.stream(model, &body).await;
        assert_eq!(status, 200, "{model}");
        let last = events.last().unwrap();
        assert!(
            last["error"]["code"].as_u64().unwrap() >= 500,
            "{model}: {events:?}"
        );
        assert!(last["error"]["status"].is_string(), "{model}");
        assert!(
            events[..events.len() - 1]
                .iter()
                .all(|ev| ev.get("candidates").is_some())
        );
    }
}

#[tokio::test]
async fn unsupported_fields_are_refused_for_other_providers() {
    let e = env().await;
    let mut body = user("x");
    body["generationConfig"] = json!({"topK": 5});
    body["safetySettings"] =
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]);
    let (status, v) = e.generate(OPENAI, &body).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("generationConfig.topK") && msg.contains("safetySettings"),
        "{msg}"
    );
    assert!(e.upstream_bodies("/chat/completions").is_empty());
    // Gemini takes them.
    let (status, _) = e.generate(GEMINI, &body).await;
    assert_eq!(status, 200);

    // With client.drop_unsupported_params they are dropped and named in a header.
    let e = env_with(true).await;
    let (status, headers, v) = post(&e.url(OPENAI, "generateContent"), &body).await;
    assert_eq!(status, 200, "{v}");
    let dropped = headers["x-bifrost-dropped-params"].to_str().unwrap();
    assert!(dropped.contains("generationConfig.topK"), "{dropped}");
    assert!(dropped.contains("safetySettings"), "{dropped}");
    let sent = e.upstream_bodies("/chat/completions");
    assert!(sent[0].get("top_k").is_none());
}

#[tokio::test]
async fn embeddings_single_and_batch() {
    let e = env().await;
    for model in ["gemini-embedding-001", "openai/text-embedding-3-small"] {
        let (status, _, v) = post(
            &e.url(model, "embedContent"),
            &json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {v}");
        assert_eq!(
            v["embedding"]["values"].as_array().unwrap().len(),
            4,
            "{model}"
        );
        let (status, _, v) = post(
            &e.url(model, "batchEmbedContents"),
            &json!({"requests": [
                {"model": format!("models/{model}"), "content": {"parts": [{"text": "a"}]}},
                {"model": format!("models/{model}"), "content": {"parts": [{"text": "b"}]}}]}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {v}");
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2, "{model}");
        assert_ne!(v["embeddings"][0], v["embeddings"][1]);
    }
    // taskType has no OpenAI equivalent.
    let (status, _, v) = post(
        &e.url("openai/text-embedding-3-small", "embedContent"),
        &json!({"content": {"parts": [{"text": "x"}]}, "taskType": "RETRIEVAL_QUERY"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("taskType"));
}

#[tokio::test]
async fn count_tokens_at_gemini_or_estimated() {
    let e = env().await;
    let body = user("one two three four");
    let (status, _, v) = post(&e.url(GEMINI, "countTokens"), &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["totalTokens"], 4, "the Gemini upstream counted");
    assert_eq!(e.upstream_bodies(":countTokens")[0], body);
    let (status, headers, v) = post(&e.url(OPENAI, "countTokens"), &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["totalTokens"], 5, "an estimate: 19 characters / 4");
    assert_eq!(headers["x-bifrost-token-count"], "estimated");
}

#[tokio::test]
async fn models_versions_and_routing_errors() {
    let e = env().await;
    let http = client();
    for version in ["v1beta", "v1"] {
        let v: Value = http
            .get(format!("{}/genai/{version}/models", e.gw.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"models/gemini/gemini-2.0-flash"),
            "{names:?}"
        );
        assert!(names.contains(&"models/openai/gpt-4o-mini"), "{names:?}");
    }
    let one = http
        .get(format!(
            "{}/genai/v1beta/models/gemini/gemini-2.5-pro",
            e.gw.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = http
        .get(format!("{}/genai/v1beta/models/gemini/nope", e.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let v: Value = missing.json().await.unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");

    // The provider's slash may come URL-encoded.
    let (status, v) = e.generate("openai%2Fgpt-4o-mini", &user("enc")).await;
    assert_eq!((status, text_of(&v)), (200, "enc".to_owned()));

    let cases = [
        (
            e.url(GEMINI, "predictLongRunning"),
            user("x"),
            404,
            "NOT_FOUND",
        ),
        (
            format!("{}/genai/v9/models/{GEMINI}:generateContent", e.gw.url),
            user("x"),
            404,
            "NOT_FOUND",
        ),
        (
            e.url(GEMINI, "generateContent"),
            json!({"contents": "nope"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            e.url("nosuch/model", "generateContent"),
            user("x"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("{}/genai/v1beta/unknown", e.gw.url),
            user("x"),
            404,
            "NOT_FOUND",
        ),
    ];
    for (url, body, status, name) in cases {
        let (got, _, v) = post(&url, &body).await;
        assert_eq!(got, status, "{url}: {v}");
        assert_eq!(v["error"]["status"], name, "{url}: {v}");
        assert_eq!(v["error"]["code"], status, "{url}");
    }
    let resp = http
        .post(e.url(GEMINI, "generateContent"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
