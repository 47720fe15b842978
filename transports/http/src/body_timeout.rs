//! A read deadline for request bodies that costs no timer until a body is slow.
//!
//! `tower_http`'s body timeout arms a timer for every request. Almost every request body here
//! arrives with its headers, so the timer is registered and cancelled without ever mattering;
//! profiles counted that among the per-request costs. This body arms its timer the first time
//! the client has not sent the rest yet, and the deadline is a total for the whole body: it is
//! never restarted when a frame arrives, so a client trickling one byte now and then cannot
//! hold a connection (and a worker's memory) past `limit`. Handlers read the body before
//! anything else, so the timer starts microseconds after the headers were read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

/// `body` with a deadline of `limit` for all of it, counted from the first time a frame was
/// not there yet (no timer at all when the body came with the headers).
pub fn with_read_timeout(body: Body, limit: Duration) -> Body {
    Body::new(LazyTimeout {
        inner: body,
        limit,
        sleep: None,
    })
}

struct LazyTimeout {
    inner: Body,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The client stopped sending its request body.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimeout(Duration);

impl HttpBody for LazyTimeout {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            // The deadline keeps running across frames: it bounds the whole body.
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let limit = this.limit;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(limit).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_complete_body_passes_without_a_timer() {
        let body = with_read_timeout(Body::from("hello"), Duration::from_millis(10));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_an_error() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"part"))))
            .await
            .unwrap();
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let body = with_read_timeout(
            Body::new(http_body_util::StreamBody::new(stream)),
            Duration::from_millis(50),
        );
        let err = body.collect().await.unwrap_err();
        assert!(err.to_string().contains("not received"), "{err}");
        drop(tx);
    }

    /// A byte every 30 ms keeps every gap far below the limit; the body is still cut at the
    /// 100 ms total, long before its 3 s of trickle end.
    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_cut_at_the_total_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let sender = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut body = with_read_timeout(
            Body::new(http_body_util::StreamBody::new(stream)),
            Duration::from_millis(100),
        );
        let started = tokio::time::Instant::now();
        let mut received = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(_)) => received += 1,
                Some(Err(e)) => break e,
                None => panic!("the trickle ended before the deadline"),
            }
        };
        let took = started.elapsed();
        assert!(err.to_string().contains("not received"), "{err}");
        assert!(
            (2..=4).contains(&received),
            "{received} bytes within 100 ms at one per 30 ms"
        );
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(130),
            "cut after {took:?}"
        );
        drop(body);
        sender.await.unwrap();
    }
}
