//! The management and execution API, mounted by the HTTP transport under `/api/mcp`:
//!
//! | call | what |
//! |---|---|
//! | `GET /clients` | every client: state, last error, tools, connections, pid |
//! | `POST /client` | add a client (one `client_configs[]` entry); 409 if the name exists |
//! | `DELETE /client/{name}` | remove a client (its tools go at once) |
//! | `POST /client/{name}/reconnect` | drop the connection and connect again now |
//! | `POST /tool/execute` | run a tool call (`{id, type, function: {name, arguments}}`), answer the `tool` message |

use std::sync::Arc;

use async_trait::async_trait;
use bifrost_core::schemas::{BifrostError, ToolCall};
use bifrost_core::{ApiRequest, PluginApi};
use http::Method;
use serde_json::{Value, json};

use crate::config::ClientConfig;
use crate::manager::{McpError, McpManager};

/// The `/api/mcp` API over one manager.
#[derive(Debug)]
pub struct McpApi {
    manager: Arc<McpManager>,
}

impl McpApi {
    /// An API over `manager`.
    pub fn new(manager: Arc<McpManager>) -> Self {
        Self { manager }
    }
}

fn body<T: serde::de::DeserializeOwned>(req: &ApiRequest, what: &str) -> Result<T, BifrostError> {
    let v = req.body.clone().ok_or_else(|| {
        BifrostError::invalid_request(format!("a JSON body ({what}) is required"))
    })?;
    serde_json::from_value(v)
        .map_err(|e| BifrostError::invalid_request(format!("invalid {what}: {e}")))
}

#[async_trait]
impl PluginApi for McpApi {
    fn prefix(&self) -> &str {
        crate::PLUGIN_NAME
    }

    async fn call(&self, req: ApiRequest) -> Result<Value, BifrostError> {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let m = &self.manager;
        let ok = || json!({"status": "success"});
        match (&req.method, segments.as_slice()) {
            (&Method::GET, ["clients"]) => Ok(json!(m.statuses())),
            (&Method::POST, ["client"]) => {
                let cfg: ClientConfig = body(&req, "MCP client config")?;
                m.add(cfg).map_err(|e| e.to_bifrost())?;
                Ok(ok())
            }
            (&Method::DELETE, ["client", name]) => {
                m.remove(name).map_err(|e| e.to_bifrost())?;
                Ok(ok())
            }
            (&Method::POST, ["client", name, "reconnect"]) => {
                m.reconnect(name).map_err(|e| e.to_bifrost())?;
                Ok(ok())
            }
            (&Method::POST, ["tool", "execute"]) => {
                let call: ToolCall = body(&req, "tool call")?;
                let msg = m.execute(&call).await.map_err(|e| e.to_bifrost())?;
                serde_json::to_value(msg)
                    .map_err(|e| McpError::InvalidCall(e.to_string()).to_bifrost())
            }
            _ => Err(BifrostError::gateway(
                404,
                "not_found",
                format!("no MCP API route {} /api/mcp{}", req.method, req.path),
            )),
        }
    }
}
