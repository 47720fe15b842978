//! `GET /api/logs` (filtered, cursor-paginated entries), `GET /api/logs/stats` and
//! `GET /api/logs/{request_id}`, through the transport-neutral [`PluginApi`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bifrost_core::schemas::BifrostError;
use bifrost_core::{ApiRequest, PluginApi};
use serde_json::{Value, json};

use crate::entry::{mask_virtual_key, parse_time_ms, rfc3339};
use crate::store::{Db, LogFilter, LogRecord, StoreError};
use crate::writer::{Shared, Slot};

/// The URL segment the API answers under (`/api/logs`).
pub const API_PREFIX: &str = "logs";
/// Page size when the caller gives none.
const DEFAULT_PAGE_SIZE: u32 = 50;
/// Longest a query may run.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The log query API; queries run on the plugin's own runtime, next to the store.
pub struct LogsApi {
    pub(crate) slot: Arc<Slot>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) max_page_size: u32,
}

impl std::fmt::Debug for LogsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsApi")
            .field("max_page_size", &self.max_page_size)
            .finish_non_exhaustive()
    }
}

fn bad(param: &str, msg: impl Into<String>) -> BifrostError {
    BifrostError::invalid_param(param, msg)
}

/// Every value of `names` in the query, comma lists split.
fn values(req: &ApiRequest, names: &[&str]) -> Vec<String> {
    req.query
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn first(req: &ApiRequest, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| req.param(n))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The filter a call's query parameters describe.
pub fn parse_filter(req: &ApiRequest) -> Result<LogFilter, BifrostError> {
    let time = |name: &str| -> Result<Option<i64>, BifrostError> {
        first(req, &[name])
            .map(|v| {
                parse_time_ms(&v).ok_or_else(|| {
                    bad(
                        name,
                        format!("{name}: {v:?} is not RFC 3339 or Unix seconds/milliseconds"),
                    )
                })
            })
            .transpose()
    };
    let status = first(req, &["status"]);
    if let Some(s) = &status
        && s != "success"
        && s != "error"
    {
        return Err(bad(
            "status",
            format!("status: {s:?} is not \"success\" or \"error\""),
        ));
    }
    Ok(LogFilter {
        start_ms: time("start_time")?,
        end_ms: time("end_time")?,
        providers: values(req, &["providers", "provider"]),
        models: values(req, &["models", "model"]),
        status,
        virtual_keys: values(req, &["virtual_keys", "virtual_key"])
            .iter()
            .map(|v| mask_virtual_key(v))
            .collect(),
        transport: first(req, &["transport"]),
        search: first(req, &["content_search", "q", "search"]),
        id: None,
    })
}

/// One entry as the API shows it.
pub fn record_json(r: &LogRecord) -> Value {
    let e = &r.entry;
    let usage = e.total_tokens.map(|total| {
        json!({"prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens,
               "total_tokens": total})
    });
    let error = e
        .error
        .as_ref()
        .map(|m| json!({"message": m, "type": e.error_type}));
    json!({
        "id": e.id,
        "seq": r.seq,
        "timestamp": rfc3339(e.started_at_ms),
        "started_at_ms": e.started_at_ms,
        "ended_at_ms": e.ended_at_ms,
        "transport": e.transport,
        "object_type": e.object_type,
        "stream": e.stream,
        "provider": e.provider,
        "model": e.model,
        "fallback_chain": e.fallback_chain,
        "fallback_index": e.fallback_index,
        "retries": e.retries,
        "status": e.status,
        "status_code": e.status_code,
        "latency_ms": e.latency_us as f64 / 1000.0,
        "ttft_ms": e.ttft_us.map(|t| t as f64 / 1000.0),
        "usage": usage,
        "input": e.input,
        "output": e.output,
        "error": error,
        "key_id": e.key_id,
        "virtual_key": e.virtual_key,
        "user": e.user,
    })
}

fn store_error(e: StoreError) -> BifrostError {
    BifrostError::gateway(500, "log_store_error", format!("log store: {e}"))
}

impl LogsApi {
    fn db(&self) -> Result<Db, BifrostError> {
        self.slot.db.get().cloned().ok_or_else(|| {
            BifrostError::gateway(
                503,
                "log_store_unavailable",
                format!(
                    "the log store is not available: {}",
                    self.slot.why_unavailable()
                ),
            )
        })
    }

    /// Runs `f` on the plugin runtime (where the pool lives), bounded by a timeout.
    async fn run<F, T>(&self, f: F) -> Result<T, BifrostError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.handle.spawn(tokio::time::timeout(QUERY_TIMEOUT, f));
        match task.await {
            Ok(Ok(r)) => r.map_err(store_error),
            Ok(Err(_)) => Err(BifrostError::gateway(
                504,
                "log_store_timeout",
                format!("the log query took longer than {QUERY_TIMEOUT:?}"),
            )),
            Err(e) => Err(BifrostError::gateway(
                500,
                "log_store_error",
                format!("the log query task failed: {e}"),
            )),
        }
    }

    async fn list(&self, req: &ApiRequest) -> Result<Value, BifrostError> {
        let filter = parse_filter(req)?;
        let limit = match first(req, &["limit", "page_size"]) {
            None => DEFAULT_PAGE_SIZE.min(self.max_page_size),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=self.max_page_size).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "limit",
                        format!(
                            "limit: {v:?} must be between 1 and {} (max_page_size)",
                            self.max_page_size
                        ),
                    ));
                }
            },
        };
        let cursor = first(req, &["cursor"])
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    bad(
                        "cursor",
                        format!("cursor: {c:?} is not a cursor from next_cursor"),
                    )
                })
            })
            .transpose()?;
        let db = self.db()?;
        let (rows, more) = self
            .run(async move { db.list(&filter, cursor, limit).await })
            .await?;
        let next = more
            .then(|| rows.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(json!({
            "logs": rows.iter().map(record_json).collect::<Vec<_>>(),
            "limit": limit,
            "has_more": more,
            "next_cursor": next,
        }))
    }

    async fn stats(&self, req: &ApiRequest) -> Result<Value, BifrostError> {
        let filter = parse_filter(req)?;
        let db = self.db()?;
        let stats = self.run(async move { db.stats(&filter).await }).await?;
        let mut v = serde_json::to_value(&stats).unwrap_or_else(|_| json!({}));
        v["dropped_entries"] = json!(self.shared.dropped());
        Ok(v)
    }

    async fn by_id(&self, id: &str) -> Result<Value, BifrostError> {
        let filter = LogFilter {
            id: Some(id.to_owned()),
            ..LogFilter::default()
        };
        let db = self.db()?;
        let (rows, _) = self
            .run(async move { db.list(&filter, None, 100).await })
            .await?;
        if rows.is_empty() {
            return Err(BifrostError::gateway(
                404,
                "not_found",
                format!("no log entry for request id {id:?}"),
            ));
        }
        Ok(json!({"logs": rows.iter().map(record_json).collect::<Vec<_>>()}))
    }
}

#[async_trait]
impl PluginApi for LogsApi {
    fn prefix(&self) -> &str {
        API_PREFIX
    }

    async fn call(&self, req: ApiRequest) -> Result<Value, BifrostError> {
        if req.method != http::Method::GET {
            return Err(BifrostError::gateway(
                405,
                "method_not_allowed",
                format!("/api/logs answers GET only, not {}", req.method),
            ));
        }
        match req.path.trim_end_matches('/') {
            "" => self.list(&req).await,
            "/stats" => self.stats(&req).await,
            p => self.by_id(p.trim_start_matches('/')).await,
        }
    }
}
