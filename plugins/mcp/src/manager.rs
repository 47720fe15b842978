//! The MCP clients: one supervisor task per configured server that connects (stdio or
//! streamable HTTP through `rmcp`), lists its tools, watches the connection and reconnects
//! with backoff; plus tool execution.
//!
//! Everything that touches a connection runs on the manager's own small runtime (one
//! thread), not on the gateway's per-core workers: a worker thread can die or be busy, and a
//! child process or an SSE stream must not be tied to one. Request paths only read a
//! snapshot of the tool list under a short lock and hand tool calls to that runtime.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bifrost_core::schemas::{
    BifrostError, ChatMessage, FunctionDef, MessageContent, Role, Tool, ToolCall,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig as ClientInfo,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceError};
use rmcp::{ClientHandler, Peer, ServiceExt};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::{ClientConfig, ConfigError, ConnectionType, McpConfig, ToolManagerConfig};
use crate::filter::RequestFilter;

/// Why an MCP operation failed; [`McpError::to_bifrost`] gives the status the caller sees.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The tool call is malformed (no name, arguments not a JSON object).
    #[error("invalid tool call: {0}")]
    InvalidCall(String),
    /// No connected client offers this tool.
    #[error("tool {0:?} is not offered by any MCP client")]
    UnknownTool(String),
    /// No client of this name.
    #[error("MCP client {0:?} not found")]
    UnknownClient(String),
    /// A client of this name exists already.
    #[error("MCP client {0:?} already exists")]
    Exists(String),
    /// The client config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The client is not connected right now (connecting, or reconnecting after a failure).
    #[error("MCP client {client:?} is not connected: {reason}")]
    Unavailable {
        /// The client.
        client: String,
        /// Its last error or state.
        reason: String,
    },
    /// The tool did not answer in time.
    #[error("MCP tool {tool:?} timed out after {after:?}")]
    Timeout {
        /// The tool (as the model named it).
        tool: String,
        /// The limit.
        after: Duration,
    },
    /// The tool ran and reported an error (`isError`).
    #[error("MCP tool {tool:?} failed: {message}")]
    ToolFailed {
        /// The tool.
        tool: String,
        /// What it said.
        message: String,
    },
    /// The server refused the call (JSON-RPC error) or the connection broke during it.
    #[error("MCP tool {tool:?} could not be called: {message}")]
    Call {
        /// The tool.
        tool: String,
        /// The protocol or transport error.
        message: String,
    },
    /// The gateway is shutting down.
    #[error("MCP manager is shut down")]
    ShutDown,
}

impl McpError {
    /// The error in Bifrost's shape: 400 malformed call or config, 404 unknown tool or client,
    /// 409 duplicate client, 503 client not connected, 504 timeout, 502 the tool or server
    /// failed.
    pub fn to_bifrost(&self) -> BifrostError {
        let msg = self.to_string();
        match self {
            Self::InvalidCall(_) | Self::Config(_) => BifrostError::invalid_request(msg),
            Self::UnknownTool(_) => BifrostError::gateway(404, "mcp_tool_not_found", msg),
            Self::UnknownClient(_) => BifrostError::gateway(404, "mcp_client_not_found", msg),
            Self::Exists(_) => BifrostError::gateway(409, "mcp_client_exists", msg),
            Self::Unavailable { .. } | Self::ShutDown => {
                BifrostError::gateway(503, "mcp_client_unavailable", msg)
            }
            Self::Timeout { .. } => BifrostError::gateway(504, "mcp_tool_timeout", msg),
            Self::ToolFailed { .. } => BifrostError::gateway(502, "mcp_tool_error", msg),
            Self::Call { .. } => BifrostError::gateway(502, "mcp_call_failed", msg),
        }
    }
}

/// A client's connection state, as `GET /api/mcp/clients` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    /// Connecting (first time or after a failure).
    Connecting,
    /// Connected; its tools are offered.
    Connected,
    /// Not connected; waiting before the next attempt.
    Disconnected,
    /// Removed or shut down.
    Stopped,
}

/// One tool of one client, ready to offer.
#[derive(Debug, Clone)]
pub struct McpTool {
    /// The client offering it.
    pub client: String,
    /// The tool's name on its server.
    pub tool: String,
    /// The declaration the model sees, named `<client>-<tool>`.
    pub def: Tool,
    /// Agent mode runs it without asking the caller.
    pub auto_execute: bool,
}

/// A client as the management API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientStatus {
    /// Its name.
    pub name: String,
    /// `stdio`, `http`, `sse`.
    pub connection_type: &'static str,
    /// Connection state.
    pub state: ConnState,
    /// The last connection error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Names of the offered tools (`<client>-<tool>`).
    pub tools: Vec<String>,
    /// Successful connections so far (more than one: it reconnected).
    pub connections: u64,
    /// Process id of a stdio server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its config (`connection_string` and headers are not shown: they may hold secrets).
    pub config: serde_json::Value,
}

#[derive(Debug)]
struct Live {
    state: ConnState,
    last_error: Option<String>,
    tools: Arc<[Arc<McpTool>]>,
    peer: Option<Peer<RoleClient>>,
    pid: Option<u32>,
    connections: u64,
}

#[derive(Debug)]
struct Slot {
    config: ClientConfig,
    stop: CancellationToken,
    kick: Notify,
    live: Mutex<Live>,
}

impl Slot {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: ConnState, error: Option<String>) {
        let mut l = self.live();
        l.state = state;
        if error.is_some() {
            l.last_error = error;
        }
        if state != ConnState::Connected {
            l.peer = None;
            l.tools = Arc::from([]);
            l.pid = None;
        }
    }
}

/// Stops the runtime without blocking, so the manager may be dropped inside async code.
#[derive(Debug)]
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The set of MCP clients.
#[derive(Debug)]
pub struct McpManager {
    handle: tokio::runtime::Handle,
    settings: ToolManagerConfig,
    clients: RwLock<BTreeMap<String, Arc<Slot>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    _rt: RuntimeGuard,
}

impl McpManager {
    /// Starts the manager's runtime and a supervisor per client; returns at once (clients
    /// connect in the background, so a slow or dead server never delays startup).
    pub fn start(cfg: McpConfig) -> std::io::Result<Arc<Self>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bifrost-mcp")
            .enable_all()
            .build()?;
        let m = Arc::new(Self {
            handle: rt.handle().clone(),
            settings: cfg.tool_manager_config,
            clients: RwLock::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            _rt: RuntimeGuard(Some(rt)),
        });
        for c in cfg.client_configs {
            // Validated with the block already; a duplicate cannot happen here.
            if let Err(e) = m.add(c) {
                tracing::warn!(error = %e, "MCP client not added");
            }
        }
        Ok(m)
    }

    /// The shared settings.
    pub fn settings(&self) -> &ToolManagerConfig {
        &self.settings
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Slot>>> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client and starts connecting it in the background.
    pub fn add(&self, config: ClientConfig) -> Result<(), McpError> {
        config.validate()?;
        let slot = Arc::new(Slot {
            config,
            stop: CancellationToken::new(),
            kick: Notify::new(),
            live: Mutex::new(Live {
                state: ConnState::Connecting,
                last_error: None,
                tools: Arc::from([]),
                peer: None,
                pid: None,
                connections: 0,
            }),
        });
        {
            let mut map = self.clients.write().unwrap_or_else(PoisonError::into_inner);
            if map.contains_key(&slot.config.name) {
                return Err(McpError::Exists(slot.config.name.clone()));
            }
            map.insert(slot.config.name.clone(), Arc::clone(&slot));
        }
        let task = self.handle.spawn(supervise(slot, self.settings.clone()));
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(())
    }

    /// Removes a client: its tools disappear at once and its connection is closed.
    pub fn remove(&self, name: &str) -> Result<(), McpError> {
        let slot = self
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| McpError::UnknownClient(name.to_owned()))?;
        slot.stop.cancel();
        slot.set(ConnState::Stopped, None);
        Ok(())
    }

    /// Drops a client's connection and connects again now.
    pub fn reconnect(&self, name: &str) -> Result<(), McpError> {
        let slot = self
            .slots()
            .get(name)
            .cloned()
            .ok_or_else(|| McpError::UnknownClient(name.to_owned()))?;
        slot.kick.notify_one();
        Ok(())
    }

    /// Every client with its state and tools, by name.
    pub fn statuses(&self) -> Vec<ClientStatus> {
        self.slots()
            .values()
            .map(|s| {
                let l = s.live();
                let mut config = serde_json::to_value(&s.config).unwrap_or_default();
                if let Some(o) = config.as_object_mut() {
                    o.remove("headers");
                    if o.contains_key("connection_string") {
                        o.insert("connection_string".into(), "<redacted>".into());
                    }
                    if let Some(sc) = o.get_mut("stdio_config").and_then(|v| v.as_object_mut()) {
                        sc.remove("envs");
                    }
                }
                ClientStatus {
                    name: s.config.name.clone(),
                    connection_type: s.config.connection_type.as_str(),
                    state: l.state,
                    last_error: l.last_error.clone(),
                    tools: l
                        .tools
                        .iter()
                        .map(|t| t.def.function.name.clone())
                        .collect(),
                    connections: l.connections,
                    pid: l.pid,
                    config,
                }
            })
            .collect()
    }

    /// The tools of connected clients this request may see, by client name then server
    /// order. Shared, not copied: this runs on every chat request.
    pub fn tools_for(&self, filter: &RequestFilter) -> Vec<Arc<McpTool>> {
        let mut out = Vec::new();
        for slot in self.slots().values() {
            let tools = Arc::clone(&slot.live().tools);
            out.extend(
                tools
                    .iter()
                    .filter(|t| filter.allows(&t.client, &t.tool))
                    .cloned(),
            );
        }
        out
    }

    /// Whether any client is configured to auto-execute tools (agent mode).
    pub fn any_auto_execute(&self) -> bool {
        self.slots()
            .values()
            .any(|s| !s.config.tools_to_auto_execute.is_empty())
    }

    /// Finds the client and tool a model-facing name refers to: `<client>-<tool>`, or a bare
    /// tool name (Bifrost v1.x) offered by one client.
    fn resolve(&self, name: &str) -> Result<(Arc<Slot>, Arc<McpTool>), McpError> {
        let slots = self.slots();
        if let Some((client, _)) = name.split_once('-')
            && let Some(slot) = slots.get(client)
        {
            let live = slot.live();
            if let Some(t) = live.tools.iter().find(|t| t.def.function.name == name) {
                return Ok((Arc::clone(slot), Arc::clone(t)));
            }
            if live.state != ConnState::Connected {
                return Err(McpError::Unavailable {
                    client: client.to_owned(),
                    reason: live
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "connecting".to_owned()),
                });
            }
        }
        for slot in slots.values() {
            if let Some(t) = slot.live().tools.iter().find(|t| t.tool == name) {
                return Ok((Arc::clone(slot), Arc::clone(t)));
            }
        }
        Err(McpError::UnknownTool(name.to_owned()))
    }

    /// Runs one tool call as the model produced it and returns the chat `tool` message that
    /// answers it.
    pub async fn execute(&self, call: &ToolCall) -> Result<ChatMessage, McpError> {
        let name = call
            .function
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| McpError::InvalidCall("function.name is missing".into()))?;
        let args = parse_arguments(&call.function.arguments)?;
        let (slot, tool) = self.resolve(name)?;
        let peer = slot
            .live()
            .peer
            .clone()
            .ok_or_else(|| McpError::Unavailable {
                client: tool.client.clone(),
                reason: "not connected".into(),
            })?;
        let limit = self.settings.tool_execution_timeout;
        let params = CallToolRequestParams::new(tool.tool.clone()).with_arguments(args);
        let started = Instant::now();
        let task = self
            .handle
            .spawn(async move { tokio::time::timeout(limit, peer.call_tool(params)).await });
        let outcome = tokio::time::timeout(limit + Duration::from_secs(1), task).await;
        tracing::debug!(tool = name, elapsed = ?started.elapsed(), "MCP tool call finished");
        let result = match outcome {
            Err(_) | Ok(Ok(Err(_))) => {
                return Err(McpError::Timeout {
                    tool: name.to_owned(),
                    after: limit,
                });
            }
            Ok(Err(_join)) => return Err(McpError::ShutDown),
            Ok(Ok(Ok(r))) => r,
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                if matches!(
                    e,
                    ServiceError::TransportClosed | ServiceError::TransportSend(_)
                ) {
                    // The server is gone: reconnect now rather than at the next health check.
                    slot.kick.notify_one();
                }
                return Err(McpError::Call {
                    tool: name.to_owned(),
                    message: e.to_string(),
                });
            }
        };
        let text = result_text(&result, name);
        if result.is_error == Some(true) {
            return Err(McpError::ToolFailed {
                tool: name.to_owned(),
                message: text,
            });
        }
        Ok(ChatMessage {
            role: Some(Role::Tool),
            content: Some(MessageContent::Text(text)),
            tool_call_id: call.id.clone(),
            ..ChatMessage::default()
        })
    }

    /// Closes every connection (servers get up to 5 s to exit).
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> =
            std::mem::take(&mut *self.clients.write().unwrap_or_else(PoisonError::into_inner))
                .into_values()
                .collect();
        for s in &slots {
            s.stop.cancel();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(6), all)
            .await
            .is_err()
        {
            tracing::warn!("MCP clients did not close in time");
        }
    }
}

/// `arguments` as the model wrote them: a JSON object, or empty for a tool without inputs.
fn parse_arguments(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, McpError> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(o)) => Ok(o),
        Ok(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Ok(_) => Err(McpError::InvalidCall(
            "function.arguments must be a JSON object".into(),
        )),
        Err(e) => Err(McpError::InvalidCall(format!(
            "function.arguments is not valid JSON: {e}"
        ))),
    }
}

/// The text a tool result becomes in a chat `tool` message: text blocks joined by newlines,
/// other blocks summarised (an image's bytes would only cost tokens), the structured
/// result when there is no text.
fn result_text(r: &CallToolResult, tool: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in &r.content {
        if let Some(t) = block.as_text() {
            parts.push(t.text.clone());
            continue;
        }
        let v = serde_json::to_value(block).unwrap_or_default();
        let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("content");
        match v.get("mimeType").and_then(|m| m.as_str()) {
            Some(mime) => parts.push(format!("[{kind} content, {mime}]")),
            None => parts.push(format!("[{kind} content]")),
        }
    }
    if parts.is_empty()
        && let Some(s) = &r.structured_content
    {
        return s.to_string();
    }
    if parts.is_empty() {
        return format!("MCP tool '{tool}' executed successfully");
    }
    parts.join("\n")
}

/// rmcp's client handler: identifies the gateway and turns `tools/list_changed`
/// notifications into a refresh.
#[derive(Clone)]
struct Handler {
    info: ClientInfo,
    refresh: mpsc::Sender<()>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientInfo {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        // Capacity one: a refresh already queued covers this one too.
        let _ = self.refresh.try_send(());
    }
}

type Service = RunningService<RoleClient, Handler>;

/// Connects once: spawns the process or opens the HTTP session, then `initialize`.
async fn connect(
    cfg: &ClientConfig,
    refresh: mpsc::Sender<()>,
) -> Result<(Service, Option<u32>), String> {
    let info = ClientInfo::new(
        ClientCapabilities::default(),
        rmcp::model::Implementation::new(
            format!("bifrost-{}", cfg.name),
            env!("CARGO_PKG_VERSION"),
        ),
    );
    let handler = Handler { info, refresh };
    match cfg.connection_type {
        ConnectionType::Stdio => {
            let sc = cfg
                .stdio_config
                .as_ref()
                .ok_or_else(|| "stdio_config missing".to_owned())?;
            let mut cmd = tokio::process::Command::new(&sc.command);
            cmd.args(&sc.args).kill_on_drop(true);
            for e in &sc.envs {
                match e.split_once('=') {
                    Some((k, v)) => {
                        cmd.env(k, v);
                    }
                    None if std::env::var_os(e).is_none() => {
                        return Err(format!("environment variable {e} is not set"));
                    }
                    None => {}
                }
            }
            let (proc, stderr) = rmcp::transport::TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start {:?}: {e}", sc.command))?;
            let pid = proc.id();
            if let Some(stderr) = stderr {
                tokio::spawn(forward_stderr(cfg.name.clone(), stderr));
            }
            let service = handler
                .serve(proc)
                .await
                .map_err(|e| format!("initialize failed: {e}"))?;
            Ok((service, pid))
        }
        ConnectionType::Http | ConnectionType::Sse => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let url = cfg.url().map_err(|e| e.to_string())?;
            let mut headers = std::collections::HashMap::new();
            for (k, v) in cfg.headers.iter().flatten() {
                let v = bifrost_core::config::resolve_env(v)
                    .map_err(|var| format!("environment variable {var} is not set"))?;
                let name = http::HeaderName::try_from(k.as_str())
                    .map_err(|e| format!("header {k:?}: {e}"))?;
                let value =
                    http::HeaderValue::try_from(v).map_err(|e| format!("header {k:?}: {e}"))?;
                headers.insert(name, value);
            }
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
            );
            let service = handler
                .serve(transport)
                .await
                .map_err(|e| format!("initialize failed: {e}"))?;
            Ok((service, None))
        }
    }
}

/// A stdio server's stderr, line by line into our logs at debug level.
async fn forward_stderr(client: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(client = %client, "mcp server: {line}");
    }
}

/// The server's tools, converted and filtered by the client's config.
async fn list_tools(
    cfg: &ClientConfig,
    peer: &Peer<RoleClient>,
    limit: Duration,
) -> Result<Vec<Arc<McpTool>>, ServiceError> {
    let tools = match tokio::time::timeout(limit, peer.list_all_tools()).await {
        Ok(r) => r?,
        Err(_) => return Err(ServiceError::Timeout { timeout: limit }),
    };
    let mut out: Vec<Arc<McpTool>> = Vec::with_capacity(tools.len());
    for t in tools {
        if !cfg.offers(&t.name) {
            continue;
        }
        let name = model_name(&cfg.name, &t.name);
        if name.len() > 64 {
            tracing::warn!(client = %cfg.name, tool = %t.name, "tool name longer than 64 characters with its prefix; not offered");
            continue;
        }
        if out.iter().any(|o| o.def.function.name == name) {
            tracing::warn!(client = %cfg.name, tool = %t.name, "tool name clashes with another after replacing characters models do not accept; not offered");
            continue;
        }
        let mut schema = (*t.input_schema).clone();
        schema
            .entry("type")
            .or_insert_with(|| serde_json::Value::from("object"));
        out.push(Arc::new(McpTool {
            client: cfg.name.clone(),
            tool: t.name.to_string(),
            auto_execute: cfg.auto_executes(&t.name),
            def: Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name,
                    description: t.description.map(|d| d.into_owned()),
                    parameters: Some(serde_json::Value::Object(schema)),
                    strict: None,
                },
            },
        }));
    }
    Ok(out)
}

/// The name the model sees: `<client>-<tool>`, with characters outside `[A-Za-z0-9_-]` (which
/// OpenAI-style APIs refuse in function names, failing the whole request) replaced by `_`.
fn model_name(client: &str, tool: &str) -> String {
    let tool: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{client}-{tool}")
}

/// One client's life: connect, serve, notice the end, wait, connect again; until removed.
async fn supervise(slot: Arc<Slot>, settings: ToolManagerConfig) {
    let name = slot.config.name.clone();
    let mut backoff = settings.reconnect_backoff_initial;
    while !slot.stop.is_cancelled() {
        slot.set(ConnState::Connecting, None);
        let (refresh_tx, mut refresh_rx) = mpsc::channel(1);
        let attempt = tokio::select! {
            _ = slot.stop.cancelled() => break,
            r = tokio::time::timeout(settings.connect_timeout, async {
                let (service, pid) = connect(&slot.config, refresh_tx).await?;
                let tools = list_tools(&slot.config, service.peer(), settings.connect_timeout)
                    .await
                    .map_err(|e| format!("tools/list failed: {e}"))?;
                Ok::<_, String>((service, pid, tools))
            }) => r.unwrap_or_else(|_| Err(format!("timed out after {:?}", settings.connect_timeout))),
        };
        match attempt {
            Ok((service, pid, tools)) => {
                tracing::info!(client = %name, tools = tools.len(), "MCP client connected");
                {
                    let mut l = slot.live();
                    l.state = ConnState::Connected;
                    l.last_error = None;
                    l.tools = tools.into();
                    l.peer = Some(service.peer().clone());
                    l.pid = pid;
                    l.connections += 1;
                }
                backoff = settings.reconnect_backoff_initial;
                let reason = serve(&slot, service, &settings, &mut refresh_rx).await;
                if slot.stop.is_cancelled() {
                    break;
                }
                tracing::warn!(client = %name, reason = %reason, "MCP client disconnected; reconnecting");
                slot.set(ConnState::Disconnected, Some(reason));
                // A kicked or dropped connection is retried at once; backoff is for failures.
                continue;
            }
            Err(e) => {
                tracing::warn!(client = %name, error = %e, retry_in = ?backoff, "MCP client failed to connect");
                slot.set(ConnState::Disconnected, Some(e));
            }
        }
        tokio::select! {
            _ = slot.stop.cancelled() => break,
            _ = slot.kick.notified() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.reconnect_backoff_max);
    }
    slot.set(ConnState::Stopped, None);
    tracing::info!(client = %name, "MCP client stopped");
}

/// Serves one connection until it ends, is kicked, or the client is stopped; refreshes the
/// tool list on notification and at each health check. Returns why it ended.
async fn serve(
    slot: &Slot,
    service: Service,
    settings: &ToolManagerConfig,
    refresh_rx: &mut mpsc::Receiver<()>,
) -> String {
    let peer = service.peer().clone();
    let mut cancel = Some(service.cancellation_token());
    let mut waiting = Box::pin(service.waiting());
    let mut ended = false;
    let reason = loop {
        let refresh = tokio::select! {
            r = &mut waiting => {
                ended = true;
                break format!("connection closed ({r:?})");
            }
            _ = slot.stop.cancelled() => break "stopped".to_owned(),
            _ = slot.kick.notified() => break "reconnect requested".to_owned(),
            _ = refresh_rx.recv() => true,
            _ = tokio::time::sleep(settings.health_check_interval) => true,
        };
        if refresh {
            match list_tools(&slot.config, &peer, settings.connect_timeout).await {
                Ok(tools) => slot.live().tools = tools.into(),
                Err(ServiceError::McpError(e)) => {
                    tracing::warn!(client = %slot.config.name, error = %e, "tools/list refused; keeping the last list");
                }
                Err(e) => break format!("health check failed: {e}"),
            }
        }
    };
    if !ended {
        if let Some(c) = cancel.take() {
            c.cancel();
        }
        // The service closes the transport (a child process is killed on drop).
        let _ = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() {
        assert!(parse_arguments("").unwrap().is_empty());
        assert!(parse_arguments("null").unwrap().is_empty());
        assert_eq!(parse_arguments(r#"{"a":1}"#).unwrap()["a"], 1);
        assert!(matches!(
            parse_arguments("[1]"),
            Err(McpError::InvalidCall(_))
        ));
        assert!(matches!(
            parse_arguments("{"),
            Err(McpError::InvalidCall(_))
        ));
    }

    #[test]
    fn errors_map_to_statuses() {
        let s = |e: McpError| e.to_bifrost().status_code;
        assert_eq!(s(McpError::InvalidCall("x".into())), Some(400));
        assert_eq!(s(McpError::UnknownTool("x".into())), Some(404));
        assert_eq!(s(McpError::Exists("x".into())), Some(409));
        assert_eq!(
            s(McpError::Timeout {
                tool: "t".into(),
                after: Duration::from_secs(1)
            }),
            Some(504)
        );
        assert_eq!(
            s(McpError::ToolFailed {
                tool: "t".into(),
                message: "m".into()
            }),
            Some(502)
        );
        assert_eq!(
            s(McpError::Unavailable {
                client: "c".into(),
                reason: "r".into()
            }),
            Some(503)
        );
    }

    #[test]
    fn model_names_are_prefixed_and_safe() {
        assert_eq!(model_name("fs", "read_file"), "fs-read_file");
        assert_eq!(model_name("fs", "get-sum"), "fs-get-sum");
        assert_eq!(model_name("fs", "files.read/v2 x"), "fs-files_read_v2_x");
    }

    #[test]
    fn results_become_text() {
        let r = CallToolResult::success(vec![
            rmcp::model::ContentBlock::text("a"),
            rmcp::model::ContentBlock::text("b"),
        ]);
        assert_eq!(result_text(&r, "t"), "a\nb");
        let empty = CallToolResult::success(vec![]);
        assert_eq!(
            result_text(&empty, "t"),
            "MCP tool 't' executed successfully"
        );
    }
}
