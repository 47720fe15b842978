"""Drives the gateway's `/anthropic` drop-in route with the official `anthropic` SDK.

Each case runs twice: against a same-dialect upstream (a bare `claude-…` model goes to the
`anthropic` provider, which receives the SDK's body as sent) and an other-dialect upstream
(`openai/gpt-4o-mini`: the request, answer and stream events are translated). Both providers
point at `mock-upstream`, which echoes the last user text, answers a fixed `get_weather` tool
call when tools are given, replies `tool said: <result>` after a tool result, and injects the
faults named in a top-level `"mock"` body object (sent with `extra_body`).
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

SAME = "claude-mock-latest"
OTHER = "openai/gpt-4o-mini"
TARGETS = [pytest.param(SAME, id="anthropic-upstream"), pytest.param(OTHER, id="openai-upstream")]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.mark.parametrize("model", TARGETS)
def test_non_stream_with_system_prompt(anthropic_client: anthropic.Anthropic, model: str):
    msg = "Hello from the anthropic SDK"
    resp = anthropic_client.messages.create(
        model=model,
        max_tokens=64,
        system=[{"type": "text", "text": "You are a test.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": msg}],
    )
    assert resp.type == "message"
    assert resp.role == "assistant"
    assert [b.type for b in resp.content] == ["text"]
    assert resp.content[0].text == msg
    assert resp.stop_reason == "end_turn"
    assert resp.usage.input_tokens > 0
    assert resp.usage.output_tokens > 0


@pytest.mark.parametrize("model", TARGETS)
def test_stream_events_and_final_message(anthropic_client: anthropic.Anthropic, model: str):
    msg = "stream these several words please"
    with anthropic_client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": msg}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    types = [e.type for e in events]
    for needed in ("message_start", "content_block_start", "content_block_delta",
                   "content_block_stop", "message_delta", "message_stop"):
        assert needed in types, types
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert final.content[0].text == msg
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", TARGETS)
def test_tool_call_round_trip(anthropic_client: anthropic.Anthropic, model: str):
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = anthropic_client.messages.create(
        model=model, max_tokens=64, tools=[WEATHER_TOOL], messages=[question]
    )
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].input == {"location": "Paris"}
    assert calls[0].id
    second = anthropic_client.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "tool said: sunny"


@pytest.mark.parametrize("model", TARGETS)
def test_streamed_tool_call_reassembles(anthropic_client: anthropic.Anthropic, model: str):
    with anthropic_client.messages.stream(
        model=model, max_tokens=64, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert len(deltas) >= 3, "arguments arrive in several input_json_delta events"
    assert all(d.delta.type == "input_json_delta" for d in deltas)
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"location": "Paris"}


@pytest.mark.parametrize("model", TARGETS)
def test_rate_limit_is_an_anthropic_error(anthropic_client: anthropic.Anthropic, model: str):
    with pytest.raises(anthropic.RateLimitError) as exc:
        anthropic_client.messages.create(
            model=model, max_tokens=16, messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"status": 429}},
        )
    body = exc.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("model", TARGETS)
def test_mid_stream_failure_is_an_error_event(anthropic_client: anthropic.Anthropic, model: str):
    seen = []
    with pytest.raises(anthropic.APIStatusError) as exc:
        with anthropic_client.messages.stream(
            model=model, max_tokens=64,
            messages=[{"role": "user", "content": "one two three four five six"}],
            extra_body={"mock": {"cut_after": 4, "chunks": 6}},
        ) as stream:
            for event in stream:
                seen.append(event.type)
    assert "message_stop" not in seen
    assert exc.value.body["type"] == "error"
    assert exc.value.body["error"]["type"] == "api_error"


def test_parameter_the_target_cannot_take_is_a_400_naming_it(anthropic_client: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as exc:
        anthropic_client.messages.create(
            model=OTHER, max_tokens=16, messages=[{"role": "user", "content": "x"}],
            extra_body={"top_k": 5},
        )
    assert exc.value.body["error"]["type"] == "invalid_request_error"
    assert "top_k" in exc.value.body["error"]["message"]
    ok = anthropic_client.messages.create(
        model=SAME, max_tokens=16, messages=[{"role": "user", "content": "x"}],
        extra_body={"top_k": 5},
    )
    assert ok.content[0].text == "x"


def test_cache_control_outside_anthropic_is_reported(surfaces_gateway_url: str):
    r = httpx.post(
        f"{surfaces_gateway_url}/anthropic/v1/messages",
        json={"model": OTHER, "max_tokens": 16, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-bifrost-dropped-params"] == "cache_control"


def test_count_tokens(anthropic_client: anthropic.Anthropic):
    counted = anthropic_client.messages.count_tokens(
        model=SAME, messages=[{"role": "user", "content": "three little words"}]
    )
    assert counted.input_tokens == 3
    raw = anthropic_client.messages.with_raw_response.count_tokens(
        model=OTHER, messages=[{"role": "user", "content": "three little words"}]
    )
    assert raw.headers["x-bifrost-token-count"] == "estimated"
    assert raw.parse().input_tokens > 0


def test_mocker_plugin_still_answers(anthropic_client: anthropic.Anthropic):
    resp = anthropic_client.messages.create(
        model="mock/echo", max_tokens=16, messages=[{"role": "user", "content": "from the mocker"}]
    )
    assert resp.content[0].text == "from the mocker"
