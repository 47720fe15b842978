"""MCP through the gateway with the official OpenAI SDK: the gateway offers the tools of the
reference server-everything (stdio), the model (the mock upstream) calls one, the caller runs
the call at ``/v1/mcp/tool/execute`` and sends the result back, the model answers.
Agent mode does the same round trip inside the gateway, also with a server written on the
official Python SDK (``mcp_weather_server.py``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import openai
import pytest

from conftest import HTTP_TIMEOUT_S, _gateway_config, _run_gateway

MODEL = "openai/gpt-4o-mini"
TOOL = "everything-get-tiny-image"
RESULT = "Here's the image you requested:\n[image content, image/png]\nThe image above is the MCP logo."


def _everything() -> dict:
    """server-everything's stdio command: $MCP_SERVER_EVERYTHING (exported by .ci/run), the
    copy .ci/run installs, else npx."""
    installed = os.environ.get("MCP_SERVER_EVERYTHING")
    cached = Path.home() / ".cache/bifrost-ci/mcp/node_modules/.bin/mcp-server-everything"
    if not installed and cached.exists():
        installed = str(cached)
    if installed:
        return {"command": installed, "args": ["stdio"]}
    return {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything", "stdio"]}


@pytest.fixture(scope="module")
def mcp_gateway(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = _gateway_config(mock_url)
    config["mcp"] = {
        "client_configs": [
            {"name": "everything", "connection_type": "stdio", "stdio_config": _everything()},
            {
                "name": "agent",
                "connection_type": "stdio",
                "stdio_config": _everything(),
                "tools_to_execute": ["get-tiny-image"],
                "tools_to_auto_execute": ["get-tiny-image"],
            },
            {
                "name": "pyweather",
                "connection_type": "stdio",
                "stdio_config": {
                    "command": sys.executable,
                    "args": [str(Path(__file__).with_name("mcp_weather_server.py"))],
                },
                "tools_to_auto_execute": ["weather"],
            },
        ]
    }
    gen = _run_gateway(config, tmp_path_factory)
    url = next(gen)
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        while True:
            clients = http.get(f"{url}/api/mcp/clients").json()
            if all(c["state"] == "connected" for c in clients) and len(clients) == 3:
                break
            assert time.monotonic() < deadline, f"MCP clients did not connect: {clients}"
            time.sleep(0.1)
    yield url
    gen.close()


@pytest.fixture(scope="module")
def mcp_client(mcp_gateway: str) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=f"{mcp_gateway}/v1", api_key="unused", max_retries=0, timeout=HTTP_TIMEOUT_S)
    try:
        yield c
    finally:
        c.close()


def test_tool_round_trip_with_the_openai_sdk(mcp_gateway: str, mcp_client: openai.OpenAI) -> None:
    messages: list = [{"role": "user", "content": "show me the logo"}]
    first = mcp_client.chat.completions.create(
        model=MODEL, messages=messages, extra_headers={"x-bf-mcp-include-tools": TOOL}
    )
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == TOOL

    # Run the call at the gateway: the answer is the chat `tool` message to send back.
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        r = http.post(f"{mcp_gateway}/v1/mcp/tool/execute", json=call.model_dump())
    assert r.status_code == 200, r.text
    tool_message = r.json()
    assert tool_message == {"role": "tool", "content": RESULT, "tool_call_id": call.id}

    messages += [first.choices[0].message.model_dump(exclude_none=True), tool_message]
    final = mcp_client.chat.completions.create(model=MODEL, messages=messages)
    assert final.choices[0].message.content == f"tool said: {RESULT}"


def test_agent_mode_answers_after_running_the_tool(mcp_client: openai.OpenAI) -> None:
    headers = {"x-bf-mcp-include-clients": "agent"}
    resp = mcp_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "logo?"}], extra_headers=headers
    )
    assert resp.choices[0].message.content == f"tool said: {RESULT}"
    assert not resp.choices[0].message.tool_calls

    stream = mcp_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "logo?"}], extra_headers=headers, stream=True
    )
    text = ""
    for chunk in stream:
        if chunk.choices:
            assert not chunk.choices[0].delta.tool_calls
            text += chunk.choices[0].delta.content or ""
    assert text == f"tool said: {RESULT}"


def test_unknown_tool_is_a_404_in_bifrost_shape(mcp_gateway: str) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        r = http.post(
            f"{mcp_gateway}/v1/mcp/tool/execute",
            json={"id": "c", "type": "function", "function": {"name": "everything-nope", "arguments": "{}"}},
        )
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "mcp_tool_not_found"


def test_python_sdk_server_over_stdio(mcp_gateway: str, mcp_client: openai.OpenAI) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        clients = {c["name"]: c for c in http.get(f"{mcp_gateway}/api/mcp/clients").json()}
        assert clients["pyweather"]["tools"] == ["pyweather-weather"]
        r = http.post(
            f"{mcp_gateway}/v1/mcp/tool/execute",
            json={"id": "c1", "type": "function",
                  "function": {"name": "pyweather-weather", "arguments": '{"location": "Oslo"}'}},
        )
    assert r.json() == {"role": "tool", "content": "sunny in Oslo", "tool_call_id": "c1"}
    # Agent mode: the mock model asks for the weather in Paris, the gateway runs the tool.
    resp = mcp_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        extra_headers={"x-bf-mcp-include-clients": "pyweather"},
    )
    assert resp.choices[0].message.content == "tool said: sunny in Paris"
