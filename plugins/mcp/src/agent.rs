//! Tool injection and agent mode.
//!
//! Agent mode applies to a request when one of the tools offered to it is listed in its
//! client's `tools_to_auto_execute`. The pre-hook then answers the request itself: it asks
//! the model through the engine ([`EngineHandle`](bifrost_core::EngineHandle)), so every round
//! runs the plugins, key selection and retries; when the answer calls only auto-executable
//! tools, it runs them (concurrently), appends the assistant message and the `tool` messages,
//! and asks again, until the model answers without tool calls, calls a tool the gateway may
//! not run on its own (the caller's own tools included), or `max_agent_depth` rounds were
//! made. That answer is the response; a stream request gets it as a stream (role, content,
//! tool calls, finish, usage), so tool rounds never reach the client as text.
//!
//! A round that fails (after its retries) fails the request with that round's error; the
//! engine then tries the request's fallbacks, each of which runs the loop again.

use std::collections::HashSet;
use std::sync::Arc;

use bifrost_core::schemas::{BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Role};
use bifrost_core::{Bifrost, RequestContext};

use crate::AgentRound;
use crate::manager::{McpManager, McpTool};

/// Adds the MCP tools the request does not already have (a caller's tool of the same name
/// wins). Returns whether agent mode applies: one of `tools` may be auto-executed.
pub fn inject(req: &mut BifrostRequest, tools: &[Arc<McpTool>]) -> bool {
    let list = req.params.tools.get_or_insert_with(Vec::new);
    let mut names: HashSet<String> = list.iter().map(|t| t.function.name.clone()).collect();
    for t in tools {
        if names.insert(t.def.function.name.clone()) {
            list.push(t.def.clone());
        }
    }
    tools.iter().any(|t| t.auto_execute)
}

/// A context for one round: the caller's identity and headers, marked as a round.
fn round_context(outer: &RequestContext) -> RequestContext {
    let mut ctx = RequestContext::new(outer.request_id.clone());
    ctx.extra_headers = outer.extra_headers.clone();
    ctx.send_back_raw_response = outer.send_back_raw_response;
    ctx.transport = outer.transport;
    ctx.virtual_key = outer.virtual_key.clone();
    ctx.headers = outer.headers.clone();
    // Parsed answers: the loop reads the tool calls.
    ctx.wire_body = false;
    ctx.extensions.insert(AgentRound);
    ctx
}

/// Runs the agent loop for `req` (tools already injected) and returns the final answer.
pub async fn run(
    engine: &Bifrost,
    manager: &McpManager,
    outer: &mut RequestContext,
    mut req: BifrostRequest,
    tools: &[Arc<McpTool>],
) -> Result<BifrostResponse, BifrostError> {
    let auto: HashSet<&str> = tools
        .iter()
        .filter(|t| t.auto_execute)
        .map(|t| t.def.function.name.as_str())
        .collect();
    let depth = manager.settings().max_agent_depth.max(1);
    let mut retries = 0;
    for round in 1..=depth {
        let mut ctx = round_context(outer);
        let result = engine.chat_completion(&mut ctx, req.clone()).await;
        outer.upstream_time += ctx.upstream_time;
        outer.key_id = ctx.key_id.clone();
        retries += ctx.retries;
        outer.retries = retries;
        let resp = result?;
        let Some(message) = resp
            .choices
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.message.clone())
        else {
            return Ok(resp);
        };
        let calls = message.tool_calls.clone().unwrap_or_default();
        if calls.is_empty() {
            return Ok(resp);
        }
        let all_auto = calls
            .iter()
            .all(|c| c.function.name.as_deref().is_some_and(|n| auto.contains(n)));
        if !all_auto {
            return Ok(resp);
        }
        if round == depth {
            tracing::warn!(request_id = %outer.request_id, depth, "MCP agent loop reached max_agent_depth");
            return Ok(resp);
        }
        tracing::debug!(request_id = %outer.request_id, round, calls = calls.len(), "MCP agent running tools");
        let results = futures::future::join_all(calls.iter().map(|c| manager.execute(c))).await;
        let bifrost_core::schemas::RequestInput::Chat(messages) = &mut req.input else {
            return Ok(resp);
        };
        messages.push(ChatMessage {
            role: Some(Role::Assistant),
            ..message
        });
        for (call, result) in calls.iter().zip(results) {
            messages.push(result.unwrap_or_else(|e| {
                // The model sees the failure and may try something else.
                ChatMessage {
                    role: Some(Role::Tool),
                    content: Some(bifrost_core::schemas::MessageContent::Text(format!(
                        "Error: {e}"
                    ))),
                    tool_call_id: call.id.clone(),
                    ..ChatMessage::default()
                }
            }));
        }
    }
    // Unreachable with depth >= 1: the last round returns above.
    Err(BifrostError::gateway(
        500,
        "mcp_agent_error",
        "agent loop ended without an answer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::{FunctionDef, ProviderKey, Tool};

    fn tool(name: &str, auto: bool) -> Arc<McpTool> {
        Arc::new(McpTool {
            client: "c".into(),
            tool: name.into(),
            auto_execute: auto,
            def: Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: format!("c-{name}"),
                    description: None,
                    parameters: None,
                    strict: None,
                },
            },
        })
    }

    #[test]
    fn injection_keeps_the_callers_tools_and_adds_each_once() {
        let mut req = BifrostRequest::chat(ProviderKey::OpenAI, "m", vec![]);
        let mut own = tool("a", false).def.clone();
        own.function.description = Some("mine".into());
        req.params.tools = Some(vec![own]);
        let auto = inject(&mut req, &[tool("a", false), tool("b", false)]);
        assert!(!auto);
        let names: Vec<_> = req
            .params
            .tools
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| (t.function.name.as_str(), t.function.description.as_deref()))
            .collect();
        assert_eq!(names, [("c-a", Some("mine")), ("c-b", None)]);
        assert!(inject(&mut req, &[tool("b", true)]));
        assert_eq!(req.params.tools.as_ref().unwrap().len(), 2);
    }
}
