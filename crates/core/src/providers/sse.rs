//! Turning an upstream SSE body into a [`ResponseStream`] (parsing by `eventsource-stream`).

use crate::providers::pool::Response;
use eventsource_stream::Eventsource;
use futures::StreamExt;

use super::ResponseStream;
use crate::schemas::{BifrostError, BifrostResponse};

/// Parses OpenAI-style SSE: `data: {json}` events ending with `data: [DONE]`.
///
/// An upstream that closes without `[DONE]` (or breaks the connection) yields a final error
/// item, so a cut stream is never mistaken for a finished one.
pub(crate) fn openai_sse(
    resp: Response,
    parse: fn(&str) -> Result<BifrostResponse, BifrostError>,
) -> ResponseStream {
    let events = resp.bytes_stream().eventsource();
    let stream = futures::stream::unfold(Some(events), move |state| async move {
        let mut events = state?;
        loop {
            match events.next().await {
                Some(Ok(ev)) => {
                    let data = ev.data.trim();
                    if data.is_empty() {
                        continue;
                    }
                    if data == "[DONE]" {
                        return None;
                    }
                    let item = parse(data);
                    let next = if item.is_err() { None } else { Some(events) };
                    return Some((item, next));
                }
                Some(Err(e)) => {
                    return Some((
                        Err(BifrostError::upstream_broke(format!(
                            "upstream stream broke: {e}"
                        ))),
                        None,
                    ));
                }
                None => {
                    return Some((
                        Err(BifrostError::upstream_broke(
                            "upstream stream ended before [DONE]",
                        )),
                        None,
                    ));
                }
            }
        }
    });
    Box::pin(stream)
}
