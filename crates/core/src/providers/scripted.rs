//! A provider that answers from a script, for testing the engine without a network.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use super::{CallOptions, Provider, ResponseStream};
use crate::schemas::{BifrostError, BifrostRequest, BifrostResponse, ModelList};

/// Answers each call with the next scripted result and logs `name:model:key` per call.
#[derive(Debug, Default)]
pub struct ScriptedProvider {
    pub name: String,
    pub script: Mutex<VecDeque<Result<BifrostResponse, BifrostError>>>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ScriptedProvider {
    fn next(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if let Ok(mut log) = self.log.lock() {
            log.push(format!("{}:{}:{}", self.name, req.model, opts.api_key()));
        }
        self.script
            .lock()
            .ok()
            .and_then(|mut s| s.pop_front())
            .unwrap_or_else(|| {
                Err(BifrostError::gateway(
                    500,
                    "script_empty",
                    "script exhausted",
                ))
            })
    }
}

impl Provider for ScriptedProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        self.next(req, opts)
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        let r = self.next(req, opts)?;
        Ok(crate::engine::response_to_chunks(r).boxed())
    }

    async fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        self.next(req, opts)
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        self.next(req, opts)
    }

    async fn list_models(&self, _opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        Ok(ModelList::default())
    }
}
