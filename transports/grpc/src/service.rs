//! The `bifrost.v1.BifrostService` implementation: translate, call the engine, translate
//! back. No business logic lives here; routing rules, the metadata policy and the error →
//! status table come from `bifrost-gateway`, everything else from the engine.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bifrost_core::schemas::BifrostError;
use bifrost_core::{Bifrost, BifrostStream, RequestContext};
use bifrost_gateway::metadata::{MetadataPolicy, request_id};
use bifrost_gateway::status::grpc_code;
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::convert;
use crate::pb;

/// When the request reached the server (stamped by the server's edge layer before the
/// body is read), so the client's deadline is measured from where tonic measures it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub Instant);

/// The service: the engine and the metadata policy derived from its plugins.
#[derive(Clone)]
pub struct GrpcGateway {
    bifrost: Bifrost,
    policy: MetadataPolicy,
    limit: AnswerLimit,
}

/// The largest answer message sent, checked before tonic encodes it so an oversized
/// answer fails with the unified error naming the setting (tonic's own check would say
/// `OUT_OF_RANGE` and name nothing).
#[derive(Clone, Copy)]
struct AnswerLimit {
    bytes: usize,
    mb: usize,
}

impl AnswerLimit {
    fn check<M: Message>(self, m: M) -> Result<M, BifrostError> {
        let len = m.encoded_len();
        if len <= self.bytes {
            return Ok(m);
        }
        let mut e = BifrostError::gateway(
            413,
            "response_too_large",
            format!(
                "answer of {len} bytes exceeds the gateway's limit of {} MiB \
                 (grpc.max_message_size_mb in config.json); raise it or ask for less",
                self.mb
            ),
        );
        e.allow_fallbacks = Some(false);
        Err(e)
    }
}

impl GrpcGateway {
    /// A service on `bifrost` (cheap: the engine is shared, not copied) sending answers of
    /// at most `max_message_size_mb` MiB.
    pub fn new(bifrost: Bifrost, max_message_size_mb: usize) -> Self {
        let policy = MetadataPolicy::for_engine(&bifrost, "grpc");
        let mb = max_message_size_mb.max(1);
        Self {
            bifrost,
            policy,
            limit: AnswerLimit {
                bytes: mb.saturating_mul(1024 * 1024),
                mb,
            },
        }
    }
}

/// What a handler takes of a request: its context, its deadline and the message.
struct Call<T> {
    ctx: RequestContext,
    deadline: Option<Deadline>,
    message: T,
}

/// The client's deadline, as an instant and as the duration it asked for (for messages).
#[derive(Clone, Copy)]
struct Deadline {
    at: tokio::time::Instant,
    asked: Duration,
}

/// Answered this much before the client's deadline, so the answer (with the unified error)
/// reaches the client before its own timer fires and tonic's server-side timer (which would
/// say `CANCELLED` without details) never gets to.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);

impl GrpcGateway {
    fn accept<T>(&self, req: Request<T>) -> Call<T> {
        let (metadata, extensions, message) = req.into_parts();
        let arrived = extensions
            .get::<Arrival>()
            .map_or_else(Instant::now, |a| a.0);
        let headers = metadata.into_headers();
        let id = request_id(&headers);
        let ctx = self
            .policy
            .context(id.to_str().unwrap_or_default(), &headers);
        let deadline = headers
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
            .and_then(|asked| {
                let margin = DEADLINE_MARGIN.min(asked / 10);
                // A deadline past what `Instant` can hold is no deadline (never a panic).
                let at = arrived.checked_add(asked.saturating_sub(margin))?;
                Some(Deadline {
                    at: tokio::time::Instant::from_std(at),
                    asked,
                })
            });
        Call {
            ctx,
            deadline,
            message,
        }
    }
}

/// Runs `fut` within the deadline, if any; past it, `DEADLINE_EXCEEDED` with the unified
/// error (the future, and with it the upstream request, is dropped).
async fn within<T>(
    deadline: Option<Deadline>,
    fut: impl Future<Output = Result<T, BifrostError>>,
) -> Result<T, BifrostError> {
    match deadline {
        None => fut.await,
        Some(d) => tokio::time::timeout_at(d.at, fut)
            .await
            .unwrap_or_else(|_| Err(deadline_error(d.asked))),
    }
}

fn deadline_error(asked: Duration) -> BifrostError {
    BifrostError::gateway(
        504,
        "timeout",
        format!(
            "deadline exceeded: no answer within the client's deadline of {} ms",
            asked.as_millis()
        ),
    )
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The status for an engine error: the code from the shared table, the message, and the
/// unified error packed in `google.rpc.Status` details; `x-request-id` in its metadata.
pub fn error_status(e: &BifrostError, request_id: &str) -> Status {
    let code = Code::from_i32(grpc_code(e.http_status()) as i32);
    let details = pb::RpcStatus {
        code: code as i32,
        message: e.error.message.clone(),
        details: vec![prost_types::Any {
            type_url: pb::BIFROST_ERROR_TYPE_URL.to_owned(),
            value: convert::error_to(e).encode_to_vec(),
        }],
    };
    let mut md = MetadataMap::new();
    insert(&mut md, "x-request-id", request_id);
    if let Some(after) = e.retry_after {
        insert(&mut md, "retry-after", &after.as_secs().max(1).to_string());
    }
    Status::with_details_and_metadata(
        code,
        e.error.message.clone(),
        details.encode_to_vec().into(),
        md,
    )
}

fn insert(md: &mut MetadataMap, name: &'static str, value: &str) {
    if let Ok(v) = MetadataValue::try_from(value) {
        md.insert(name, v);
    }
}

/// Logs a failed call (client errors at debug, the rest at warn) and builds its status.
fn fail(ctx: &RequestContext, e: &BifrostError) -> Status {
    if e.http_status() < 500 {
        tracing::debug!(request_id = %ctx.request_id, status = e.http_status(), error = %e, "grpc request failed");
    } else {
        tracing::warn!(request_id = %ctx.request_id, status = e.http_status(), error = %e, "grpc request failed");
    }
    error_status(e, &ctx.request_id)
}

/// An answer with Bifrost's response metadata: the request id, and the retries and
/// fallback index when a retry or fallback happened (the HTTP API's headers).
fn answer<T>(ctx: &RequestContext, message: T) -> Response<T> {
    let mut resp = Response::new(message);
    let md = resp.metadata_mut();
    insert(md, "x-request-id", &ctx.request_id);
    if ctx.retries > 0 {
        insert(md, "x-bf-retries", &ctx.retries.to_string());
    }
    if let Some(i) = ctx.fallback_index {
        insert(md, "x-bf-fallback-index", &i.to_string());
    }
    resp
}

/// The chunks of a chat stream as proto, ended by the client's deadline and by the first
/// error. Mapped in place (no task, no queue): the client's flow control reaches the
/// upstream, and dropping this (the client cancelled) drops the engine stream, which
/// cancels the upstream request.
pub struct ChunkStream {
    inner: Option<BifrostStream>,
    limit: AnswerLimit,
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
    request_id: String,
}

impl Stream for ChunkStream {
    type Item = Result<pb::ChatCompletionStreamResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some((sleep, asked)) = this.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let asked = *asked;
            this.inner = None;
            return Poll::Ready(Some(Err(error_status(
                &deadline_error(asked),
                &this.request_id,
            ))));
        }
        let item = match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                convert::chunk_to(chunk).and_then(|c| this.limit.check(c))
            }
            Poll::Ready(Some(Err(e))) => Err(e),
            Poll::Ready(None) => {
                this.inner = None;
                return Poll::Ready(None);
            }
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(item.map_err(|e| {
            this.inner = None;
            tracing::warn!(request_id = %this.request_id, error = %e, "grpc stream ended by an error");
            error_status(&e, &this.request_id)
        })))
    }
}

#[tonic::async_trait]
impl pb::bifrost_service_server::BifrostService for GrpcGateway {
    async fn chat_completion(
        &self,
        request: Request<pb::ChatCompletionRequest>,
    ) -> Result<Response<pb::ChatCompletionResponse>, Status> {
        let Call {
            mut ctx,
            deadline,
            message,
        } = self.accept(request);
        let req = convert::chat_request(message).map_err(|e| fail(&ctx, &e))?;
        let result = within(deadline, self.bifrost.chat_completion(&mut ctx, req)).await;
        result
            .and_then(convert::chat_response_to)
            .and_then(|m| self.limit.check(m))
            .map(|m| answer(&ctx, m))
            .map_err(|e| fail(&ctx, &e))
    }

    type ChatCompletionStreamStream = ChunkStream;

    async fn chat_completion_stream(
        &self,
        request: Request<pb::ChatCompletionStreamRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let Call {
            mut ctx,
            deadline,
            message,
        } = self.accept(request);
        let req = convert::chat_stream_request(message).map_err(|e| fail(&ctx, &e))?;
        // The engine moves the context into the stream it returns.
        let request_id = ctx.request_id.clone();
        let stream = within(deadline, self.bifrost.chat_completion_stream(&mut ctx, req))
            .await
            .map_err(|e| fail(&ctx, &e))?;
        // The stream took the context over; its copy has the attempt's retries and fallback.
        let (retries, fallback_index) = {
            let c = stream.context();
            (c.retries, c.fallback_index)
        };
        let mut head = RequestContext::new(request_id.clone());
        head.retries = retries;
        head.fallback_index = fallback_index;
        let chunks = ChunkStream {
            inner: Some(stream),
            limit: self.limit,
            deadline: deadline.map(|d| (Box::pin(tokio::time::sleep_until(d.at)), d.asked)),
            request_id,
        };
        Ok(answer(&head, chunks))
    }

    async fn text_completion(
        &self,
        request: Request<pb::TextCompletionRequest>,
    ) -> Result<Response<pb::TextCompletionResponse>, Status> {
        let Call {
            mut ctx,
            deadline,
            message,
        } = self.accept(request);
        let req = convert::text_request(message).map_err(|e| fail(&ctx, &e))?;
        let result = within(deadline, self.bifrost.text_completion(&mut ctx, req)).await;
        result
            .and_then(convert::text_response_to)
            .and_then(|m| self.limit.check(m))
            .map(|m| answer(&ctx, m))
            .map_err(|e| fail(&ctx, &e))
    }

    async fn embedding(
        &self,
        request: Request<pb::EmbeddingRequest>,
    ) -> Result<Response<pb::EmbeddingResponse>, Status> {
        let Call {
            mut ctx,
            deadline,
            message,
        } = self.accept(request);
        let req = convert::embedding_request(message).map_err(|e| fail(&ctx, &e))?;
        let result = within(deadline, self.bifrost.embedding(&mut ctx, req)).await;
        result
            .and_then(convert::embedding_response_to)
            .and_then(|m| self.limit.check(m))
            .map(|m| answer(&ctx, m))
            .map_err(|e| fail(&ctx, &e))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let Call { ctx, deadline, .. } = self.accept(request);
        let list = within(deadline, async { Ok(self.bifrost.list_models(&ctx).await) })
            .await
            .map_err(|e| fail(&ctx, &e))?;
        let list = self
            .limit
            .check(convert::models_to(list))
            .map_err(|e| fail(&ctx, &e))?;
        Ok(answer(&ctx, list))
    }

    async fn count_tokens(
        &self,
        request: Request<pb::CountTokensRequest>,
    ) -> Result<Response<pb::CountTokensResponse>, Status> {
        let Call {
            mut ctx,
            deadline,
            message,
        } = self.accept(request);
        let req = convert::count_tokens_request(message).map_err(|e| fail(&ctx, &e))?;
        let count = within(deadline, self.bifrost.count_tokens(&mut ctx, req))
            .await
            .map_err(|e| fail(&ctx, &e))?;
        Ok(answer(&ctx, convert::token_count_to(count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_parse() {
        assert_eq!(
            parse_grpc_timeout(b"100m"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(parse_grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout(b"123456789S"), None);
        assert_eq!(parse_grpc_timeout(b"m"), None);
        assert_eq!(parse_grpc_timeout(b"10x"), None);
        assert_eq!(parse_grpc_timeout(b""), None);
    }

    #[test]
    fn oversized_answers_are_resource_exhausted_naming_the_setting() {
        let limit = AnswerLimit { bytes: 64, mb: 1 };
        let small = pb::ListModelsResponse::default();
        assert!(limit.check(small).is_ok());
        let big = pb::ListModelsResponse {
            object: "x".repeat(100),
            data: Vec::new(),
        };
        let e = limit.check(big).unwrap_err();
        assert!(
            e.error.message.contains("grpc.max_message_size_mb"),
            "{e:?}"
        );
        assert_eq!(error_status(&e, "r").code(), Code::ResourceExhausted);
    }

    #[test]
    fn error_status_uses_the_shared_table_and_packs_the_unified_error() {
        let e = BifrostError::queue_full(&bifrost_core::schemas::ProviderKey::OpenAI);
        let s = error_status(&e, "req-1");
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.metadata().get("x-request-id").unwrap(), "req-1");
        assert_eq!(s.metadata().get("retry-after").unwrap(), "1");
        let rpc = pb::RpcStatus::decode(s.details()).unwrap();
        assert_eq!(rpc.code, Code::ResourceExhausted as i32);
        assert_eq!(rpc.details[0].type_url, pb::BIFROST_ERROR_TYPE_URL);
        let back = pb::BifrostError::decode(rpc.details[0].value.as_slice()).unwrap();
        assert_eq!(convert::error_from(back).error, e.error);

        let cases = [
            (
                BifrostError::invalid_param("model", "x"),
                Code::InvalidArgument,
            ),
            (
                deadline_error(Duration::from_millis(5)),
                Code::DeadlineExceeded,
            ),
            (
                BifrostError::upstream_unreachable(false, "down"),
                Code::Unavailable,
            ),
            (BifrostError::gateway(500, "internal", "x"), Code::Internal),
            (BifrostError::cancelled("gone"), Code::Cancelled),
        ];
        for (e, code) in cases {
            assert_eq!(error_status(&e, "r").code(), code, "{e:?}");
        }
    }
}
