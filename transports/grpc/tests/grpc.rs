//! The gRPC transport end to end: a tonic client generated from `proto/bifrost/v1` against
//! the server (in-process on `127.0.0.1:0`, and the real `bifrost-grpc` binary) in front of
//! the mock upstream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bifrost_transport_grpc::pb;
use futures::StreamExt;
use serde_json::json;
use support::*;
use tonic::Code;

/// Bounds every test: a hung call fails the test instead of the run.
const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_chat_echoes_with_metadata_and_extra_fields() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let req = with_md(
            chat("openai/gpt-4o-mini", "hello over grpc"),
            &[
                ("x-request-id", "grpc-req-1"),
                ("x-bf-eh-x-custom", "abc"),
                ("x-bf-eh-authorization", "Bearer stolen"),
            ],
        );
        let resp = client.chat_completion(req).await.unwrap();
        assert_eq!(resp.metadata().get("x-request-id").unwrap(), "grpc-req-1");
        let r = resp.into_inner();
        assert_eq!(text_of(&r), "hello over grpc");
        assert_eq!(r.object, "chat.completion");
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(r.usage.unwrap().total_tokens > 0);
        let extra = r.extra_fields.unwrap();
        assert_eq!(extra.provider.as_deref(), Some("openai"));
        assert!(extra.latency_ms.is_some());

        assert!(extra.raw_response.is_none(), "only when asked for");

        let sent = mock.last_request().unwrap();
        assert_eq!(sent.header("x-custom"), Some("abc"));
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test-a"));

        // `x-bf-send-back-raw-response: true` adds the provider's body as a Value.
        let req = with_md(
            chat("openai/gpt-4o-mini", "raw please"),
            &[("x-bf-send-back-raw-response", "true")],
        );
        let r = client.chat_completion(req).await.unwrap().into_inner();
        let raw = r.extra_fields.unwrap().raw_response.expect("raw response");
        let raw = bifrost_transport_grpc::convert::value_to_json(raw, "raw").unwrap();
        assert_eq!(raw["choices"][0]["message"]["content"], "raw please");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivers_chunks_in_order_and_ends_cleanly() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let mut req = chat_stream("openai/gpt-4o-mini", "one two three four");
        req.params = Some(pb::ModelParameters {
            stream_options: Some(pb::StreamOptions {
                include_usage: Some(true),
                extra: None,
            }),
            ..Default::default()
        });
        let resp = client
            .chat_completion_stream(with_md(req, &[("x-request-id", "s-1")]))
            .await
            .unwrap();
        assert_eq!(resp.metadata().get("x-request-id").unwrap(), "s-1");
        let chunks: Vec<_> = resp.into_inner().collect().await;
        let chunks: Vec<pb::ChatCompletionStreamResponse> =
            chunks.into_iter().map(Result::unwrap).collect();
        assert!(chunks.len() > 2, "{chunks:?}");
        let text: String = chunks.iter().map(delta_text).collect();
        assert_eq!(text, "one two three four");
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.object, "chat.completion.chunk");
            let x = c.extra_fields.as_ref().unwrap();
            assert_eq!(x.chunk_index, Some(i as u64));
            assert_eq!(x.provider.as_deref(), Some("openai"));
        }
        assert!(
            chunks.iter().any(
                |c| c.choices.first().and_then(|ch| ch.finish_reason.as_deref()) == Some("stop")
            )
        );
        assert!(chunks.last().unwrap().usage.is_some(), "usage chunk last");
    })
    .await;
}

fn weather_tool() -> pb::Tool {
    let params = json!({"type": "object", "properties": {"location": {"type": "string"}},
        "required": ["location"]});
    let serde_json::Value::Object(params) = params else {
        unreachable!()
    };
    pb::Tool {
        r#type: "function".into(),
        function: Some(pb::FunctionDefinition {
            name: "get_weather".into(),
            description: Some("Current weather".into()),
            parameters: Some(bifrost_transport_grpc::convert::map_to_struct(params)),
            strict: None,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_round_trip_with_the_exact_tool_result_upstream() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let mut req = chat("openai/gpt-4o-mini", "weather in Oslo?");
        req.params = Some(pb::ModelParameters {
            tools: vec![weather_tool()],
            tool_choice: Some(bifrost_transport_grpc::convert::json_to_value(json!(
                "auto"
            ))),
            ..Default::default()
        });
        let first = client
            .chat_completion(req.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            first.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        let assistant = first.choices[0].message.clone().unwrap();
        let call = assistant.tool_calls[0].clone();
        assert_eq!(
            call.function.as_ref().unwrap().name.as_deref(),
            Some("get_weather")
        );
        let sent = mock.last_request().unwrap().body;
        assert_eq!(
            sent["tools"][0]["function"]["parameters"]["required"],
            json!(["location"])
        );
        assert_eq!(sent["tool_choice"], json!("auto"));

        req.messages.push(assistant);
        req.messages.push(pb::ChatMessage {
            role: pb::Role::Tool as i32,
            tool_call_id: call.id.clone(),
            content: Some(pb::chat_message::Content::Text("\"sunny\"".into())),
            ..Default::default()
        });
        let second = client.chat_completion(req).await.unwrap().into_inner();
        assert_eq!(text_of(&second), "tool said: \"sunny\"");
        let sent = mock.last_request().unwrap().body;
        let tool_msg = &sent["messages"][2];
        assert_eq!(tool_msg["role"], "tool");
        assert_eq!(tool_msg["content"], json!("\"sunny\""), "not re-quoted");
        assert_eq!(tool_msg["tool_call_id"], json!(call.id.unwrap()));
        assert_eq!(
            sent["messages"][1]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_params_reach_the_provider_unchanged() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let mut req = chat("openai/gpt-4o-mini", "x");
        let serde_json::Value::Object(extra) = json!({"top_k": 40, "vendor": {"a": [1, 0.5]}})
        else {
            unreachable!()
        };
        req.params = Some(pb::ModelParameters {
            temperature: Some(0.25),
            stop: Some(bifrost_transport_grpc::convert::json_to_value(json!([
                "END"
            ]))),
            extra: Some(bifrost_transport_grpc::convert::map_to_struct(extra)),
            ..Default::default()
        });
        client.chat_completion(req).await.unwrap();
        let body = mock.last_request().unwrap().body;
        assert_eq!(body["top_k"], json!(40));
        assert!(body["top_k"].is_u64(), "an integer, not 40.0");
        assert_eq!(body["vendor"], json!({"a": [1, 0.5]}));
        assert_eq!(body["temperature"], json!(0.25));
        assert_eq!(body["stop"], json!(["END"]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_answers_when_the_primary_is_unreachable() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let mut req = chat("groq/llama-3.1-8b-instant", "fell back");
        req.fallbacks = vec![pb::Fallback {
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
        }];
        let resp = client.chat_completion(req).await.unwrap();
        assert_eq!(resp.metadata().get("x-bf-fallback-index").unwrap(), "0");
        let r = resp.into_inner();
        assert_eq!(text_of(&r), "fell back");
        let extra = r.extra_fields.unwrap();
        assert_eq!(extra.provider.as_deref(), Some("openai"));
        assert_eq!(extra.fallback_index, Some(0));

        // Streams fall back too (before the first chunk).
        let mut sreq = chat_stream("groq/llama-3.1-8b-instant", "streamed fallback");
        sreq.fallbacks = vec![pb::Fallback {
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
        }];
        let resp = client.chat_completion_stream(sreq).await.unwrap();
        assert_eq!(resp.metadata().get("x-bf-fallback-index").unwrap(), "0");
        let text: String = resp
            .into_inner()
            .map(|c| delta_text(&c.unwrap()))
            .collect::<Vec<_>>()
            .await
            .concat();
        assert_eq!(text, "streamed fallback");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_maps_to_its_code_with_the_unified_error_in_details() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;

        // Invalid argument: no provider in the model name.
        let s = client
            .chat_completion(chat("gpt-4o", "x"))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        let e = unified(&s);
        assert_eq!(
            (e.status_code, e.error.param.as_deref()),
            (Some(400), Some("model"))
        );

        // A provider that is not configured.
        let s = client
            .chat_completion(chat("mistral/small", "x"))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("not configured"), "{s:?}");
        assert_eq!(unified(&s).error.param.as_deref(), Some("model"));

        // An empty conversation.
        let mut empty = chat("openai/gpt-4o-mini", "x");
        empty.messages.clear();
        let s = client.chat_completion(empty).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument);

        // Upstream statuses, chosen per request through forwarded metadata.
        for (status, code) in [
            ("400", Code::InvalidArgument),
            ("401", Code::Unauthenticated),
            ("403", Code::PermissionDenied),
            ("404", Code::NotFound),
            ("429", Code::ResourceExhausted),
            ("500", Code::Internal),
            ("502", Code::Unavailable),
            ("503", Code::Unavailable),
        ] {
            let req = with_md(
                chat("openai/gpt-4o-mini", "x"),
                &[("x-bf-eh-x-mock-status", status), ("x-request-id", "err-1")],
            );
            let s = client.chat_completion(req).await.unwrap_err();
            assert_eq!(s.code(), code, "upstream {status}: {s:?}");
            assert_eq!(s.metadata().get("x-request-id").unwrap(), "err-1");
            let e = unified(&s);
            assert_eq!(
                e.status_code.map(|c| c.to_string()).as_deref(),
                Some(status)
            );
            assert!(!e.is_bifrost_error, "relayed from the provider");
            let origin = e.extra_fields.unwrap();
            assert_eq!(origin.provider.unwrap().as_str(), "openai");
        }

        // Upstream unreachable (no fallback): UNAVAILABLE.
        let s = client
            .chat_completion(chat("groq/llama", "x"))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert_eq!(unified(&s).status_code, Some(502));

        // A stream that fails before its first chunk fails the call.
        let req = with_md(
            chat_stream("openai/gpt-4o-mini", "x"),
            &[("x-bf-eh-x-mock-status", "429")],
        );
        let s = client.chat_completion_stream(req).await.unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(unified(&s).status_code, Some(429));

        // A stream cut mid-way ends with an error, never a clean end.
        let req = with_md(
            chat_stream("openai/gpt-4o-mini", "a b c d e f g h"),
            &[("x-bf-eh-x-mock-cut-after", "2")],
        );
        let items: Vec<_> = client
            .chat_completion_stream(req)
            .await
            .unwrap()
            .into_inner()
            .collect()
            .await;
        let last = items.last().unwrap();
        let s = last.as_ref().unwrap_err();
        assert!(
            matches!(s.code(), Code::Unavailable | Code::Internal),
            "{s:?}"
        );
        unified(s);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadlines_bound_the_upstream_call() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let mut req = with_md(
            chat("openai/gpt-4o-mini", "slow"),
            &[("x-bf-eh-x-mock-delay-ms", "5000")],
        );
        req.set_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let s = client.chat_completion(req).await.unwrap_err();
        assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let e = unified(&s);
        assert_eq!(e.status_code, Some(504));
        assert!(e.error.message.contains("300 ms"), "{e:?}");

        // A stream longer than the deadline is cut with DEADLINE_EXCEEDED.
        let mut req = with_md(
            chat_stream("openai/gpt-4o-mini", "x"),
            &[
                ("x-bf-eh-x-mock-chunks", "50"),
                ("x-bf-eh-x-mock-chunk-delay-ms", "50"),
            ],
        );
        req.set_timeout(Duration::from_millis(600));
        let items: Vec<_> = client
            .chat_completion_stream(req)
            .await
            .unwrap()
            .into_inner()
            .collect()
            .await;
        assert!(items.len() > 2, "some chunks first: {}", items.len());
        let s = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
        assert_eq!(unified(s).status_code, Some(504));
    })
    .await;
}

/// An OpenAI-style upstream that streams a chunk every 50 ms for a long time and records
/// when its response body is dropped: that happens when the gateway drops the upstream
/// connection, i.e. the upstream sees the cancel.
async fn endless_upstream(dropped: Arc<AtomicBool>, sent: Arc<AtomicUsize>) -> String {
    use axum::response::IntoResponse;

    struct Guard(Arc<AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    let handler = move || {
        let dropped = dropped.clone();
        let sent = sent.clone();
        async move {
            let guard = Guard(dropped);
            let body = futures::stream::unfold((guard, 0u32), move |(guard, i)| {
                let sent = sent.clone();
                async move {
                    if i >= 400 {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    let line = format!(
                        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}},\"finish_reason\":null}}]}}\n\n"
                    );
                    Some((Ok::<_, std::io::Error>(line), (guard, i + 1)))
                }
            });
            (
                [("content-type", "text/event-stream")],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(handler.clone()))
        .route("/chat/completions", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_stream_cancels_the_upstream_request() {
    bounded(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let upstream = endless_upstream(dropped.clone(), sent.clone()).await;
        let server = Server::start(&config(&upstream)).await;
        let mut client = server.client().await;
        let mut stream = client
            .chat_completion_stream(chat_stream("openai/gpt-4o-mini", "x"))
            .await
            .unwrap()
            .into_inner();
        for _ in 0..3 {
            stream.next().await.unwrap().unwrap();
        }
        assert!(!dropped.load(Ordering::SeqCst));
        drop(stream);
        let started = Instant::now();
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the upstream never saw the cancel"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at_cancel = sent.load(Ordering::SeqCst);
        assert!(at_cancel < 40, "upstream stopped early: {at_cancel} chunks");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            sent.load(Ordering::SeqCst),
            at_cancel,
            "no chunks after the cancel"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_hooks_run_on_grpc_calls() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let r = client
            .chat_completion(chat("mock/echo", "answered by the mocker"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(text_of(&r), "answered by the mocker");
        let chunks: Vec<_> = client
            .chat_completion_stream(chat_stream("mock/echo", "mocked stream"))
            .await
            .unwrap()
            .into_inner()
            .collect()
            .await;
        let text: String = chunks
            .iter()
            .map(|c| delta_text(c.as_ref().unwrap()))
            .collect();
        assert_eq!(text, "mocked stream");
        assert_eq!(mock.total_requests(), 0, "the upstream was never called");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_embeddings_models_and_token_counts() {
    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut client = server.client().await;
        let t = client
            .text_completion(pb::TextCompletionRequest {
                model: "openai/gpt-3.5-turbo-instruct".into(),
                prompt: Some(pb::text_completion_request::Prompt::Text("say hi".into())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(t.choices[0].text.is_some(), "{t:?}");

        let e = client
            .embedding(pb::EmbeddingRequest {
                model: "openai/text-embedding-3-small".into(),
                input: Some(pb::EmbeddingInput {
                    input: Some(pb::embedding_input::Input::Texts(pb::StringList {
                        values: vec!["a".into(), "b".into()],
                    })),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(e.data.len(), 2);
        assert!(matches!(
            e.data[0].vector,
            Some(pb::embedding::Vector::Floats(ref f)) if !f.values.is_empty()
        ));

        let models = client
            .list_models(pb::ListModelsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            models.data.iter().any(|m| m.id.starts_with("openai/")),
            "{models:?}"
        );

        let count = client
            .count_tokens(pb::CountTokensRequest {
                model: "anthropic/claude-3-haiku".into(),
                messages: vec![user("count these tokens please")],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(count.input_tokens > 0, "{count:?}");
        let s = client
            .count_tokens(pb::CountTokensRequest {
                model: "openai/gpt-4o".into(),
                messages: vec![user("x")],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert_eq!(unified(&s).kind(), "unsupported_operation");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    bounded(async {
        let mock = mock().await;
        let server = Server::start(&config(&mock.url())).await;
        let mut health = HealthClient::new(server.channel().await);
        for service in [pb::SERVICE_NAME, ""] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap();
            assert_eq!(
                r.get_ref().status,
                ServingStatus::Serving as i32,
                "{service:?}"
            );
        }
        let s = health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::NotFound);

        let mut reflection = ServerReflectionClient::new(server.channel().await);
        let reqs = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("bifrost.v1.BifrostService".into()),
        ]
        .map(|m| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        });
        let mut answers = reflection
            .server_reflection_info(futures::stream::iter(reqs))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            answers.next().await.unwrap().unwrap().message_response
        else {
            panic!("list services answer expected")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "bifrost.v1.BifrostService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(names.contains(&want), "{names:?}");
        }
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            answers.next().await.unwrap().unwrap().message_response
        else {
            panic!("file descriptor answer expected")
        };
        assert!(!files.file_descriptor_proto.is_empty());

        // Shutting down turns health to NOT_SERVING before the server stops.
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_fail_with_a_clear_error() {
    bounded(async {
        let mock = mock().await;
        let mut cfg = config(&mock.url());
        cfg["grpc"] = json!({"max_message_size_mb": 1});
        let server = Server::start(&cfg).await;
        let mut client = server.client().await;
        let big = "x".repeat(1024 * 1024 + 10);
        let s = client
            .chat_completion(with_md(
                chat("openai/gpt-4o-mini", &big),
                &[("x-request-id", "big-1")],
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        assert!(s.message().contains("grpc.max_message_size_mb"), "{s:?}");
        assert!(s.message().contains("1 MiB"), "{s:?}");
        let e = unified(&s);
        assert_eq!((e.status_code, e.kind()), (Some(413), "request_too_large"));
        assert_eq!(mock.total_requests(), 0);
        // Just under the limit passes.
        let ok = "y".repeat(512 * 1024);
        client
            .chat_completion(chat("openai/gpt-4o-mini", &ok))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_with_the_same_flags_config_and_plugins() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    bounded(async {
        let mock = mock().await;
        let mut bin = Binary::start(&config(&mock.url()), &["-log-style", "json"]);
        let mut client = connect(&bin.url).await;
        let r = client
            .chat_completion(chat("mock/echo", "from the binary"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(text_of(&r), "from the binary");
        let r = client
            .chat_completion(chat("openai/gpt-4o-mini", "upstream via binary"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(text_of(&r), "upstream via binary");
        let mut health = HealthClient::new(channel(&bin.url).await);
        let h = health
            .check(HealthCheckRequest {
                service: pb::SERVICE_NAME.into(),
            })
            .await
            .unwrap();
        assert_eq!(h.get_ref().status, ServingStatus::Serving as i32);

        // `-healthcheck` probes the health service at the port the flags name.
        let port = bin.url.rsplit(':').next().unwrap().to_owned();
        let probe = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-grpc"))
            .args(["-healthcheck", "-host", "127.0.0.1", "-grpc-port", &port])
            .args(["-app-dir", "/nonexistent-bifrost-dir"])
            .output()
            .unwrap();
        assert!(probe.status.success(), "{probe:?}");

        // SIGTERM: graceful stop, exit 0.
        let pid = bin.pid().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || {
            let s = bin.wait_exit(Duration::from_secs(10));
            (s, bin)
        })
        .await
        .unwrap()
        .0
        .expect("exited after SIGTERM");
        assert!(status.success(), "{status:?}");
        let probe = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-grpc"))
            .args(["-healthcheck", "-host", "127.0.0.1", "-grpc-port", &port])
            .args(["-app-dir", "/nonexistent-bifrost-dir"])
            .output()
            .unwrap();
        assert!(!probe.status.success(), "nothing serves after the stop");
    })
    .await;
}

/// What the recorder keeps per request: transport, virtual key, `x-team`, request id.
type Seen = (String, Option<String>, Option<String>, String);

/// Records what a plugin sees of each request.
#[derive(Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<Seen>>,
    chunks: AtomicUsize,
    ends: AtomicUsize,
}

#[async_trait::async_trait]
impl bifrost_core::Plugin for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn pre_hook(
        &self,
        ctx: &mut bifrost_core::RequestContext,
        _req: &mut bifrost_core::schemas::BifrostRequest,
    ) -> bifrost_core::PreHookOutcome {
        let team = ctx
            .headers
            .get("x-team")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.seen.lock().unwrap().push((
            ctx.transport.to_owned(),
            ctx.virtual_key.clone(),
            team,
            ctx.request_id.clone(),
        ));
        bifrost_core::PreHookOutcome::Continue
    }

    fn on_stream_chunk(
        &self,
        _ctx: &mut bifrost_core::RequestContext,
        _chunk: &mut bifrost_core::schemas::BifrostResponse,
    ) {
        self.chunks.fetch_add(1, Ordering::SeqCst);
    }

    fn on_stream_end(
        &self,
        _ctx: &mut bifrost_core::RequestContext,
        _error: Option<&bifrost_core::schemas::BifrostError>,
    ) {
        self.ends.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_see_grpc_metadata_virtual_keys_and_every_chunk() {
    bounded(async {
        let mock = mock().await;
        let cfg = bifrost_core::BifrostConfig::from_json(&config(&mock.url()).to_string()).unwrap();
        let recorder = Arc::new(Recorder::default());
        let engine = bifrost_core::Bifrost::builder(cfg)
            .plugin(recorder.clone())
            .build()
            .unwrap();
        let server = Server::start_engine(engine).await;
        let mut client = server.client().await;
        let md = [
            ("x-bf-vk", "vk-team-a"),
            ("x-team", "search"),
            ("x-request-id", "plug-1"),
        ];
        client
            .chat_completion(with_md(chat("openai/gpt-4o-mini", "x"), &md))
            .await
            .unwrap();
        let chunks: Vec<_> = client
            .chat_completion_stream(with_md(chat_stream("openai/gpt-4o-mini", "a b c"), &md))
            .await
            .unwrap()
            .into_inner()
            .collect()
            .await;
        assert!(chunks.iter().all(Result::is_ok));
        let seen = recorder.seen.lock().unwrap().clone();
        let want = (
            "grpc".to_owned(),
            Some("vk-team-a".to_owned()),
            Some("search".to_owned()),
            "plug-1".to_owned(),
        );
        assert_eq!(seen, vec![want.clone(), want]);
        assert_eq!(recorder.chunks.load(Ordering::SeqCst), chunks.len());
        assert_eq!(recorder.ends.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_and_drains_within_its_limit() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    bounded(async {
        let mock = mock().await;
        let server = Server::start_draining(&config(&mock.url()), Duration::from_millis(500)).await;
        let mut health = HealthClient::new(server.channel().await);
        // A watch never ends by itself: without the drain limit it would hold the stop.
        let mut watch = health
            .watch(HealthCheckRequest {
                service: pb::SERVICE_NAME.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!(first.status, ServingStatus::Serving as i32);
        let started = Instant::now();
        let stopping = tokio::spawn(server.stop());
        let next = watch.next().await.unwrap().unwrap();
        assert_eq!(next.status, ServingStatus::NotServing as i32);
        stopping.await.unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{took:?}"
        );
    })
    .await;
}
