"""Drives the bifrost-http gateway with the official `openai` Python SDK.

The upstream is `mock-upstream` (an OpenAI-compatible fake): chat echoes the
last user message, answers a fixed tool call when `tools` are given, and injects
faults chosen by a top-level `"mock"` body object, which the gateway forwards
upstream (sent here with `extra_body`). `model="mock/..."` is answered by the
gateway's mocker plugin without touching the upstream.

Tests run in file order; the last one checks the gateway survived everything.
"""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest

CHAT_MODEL = "openai/gpt-4o-mini"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def _scenario(tag: str) -> str:
    return f"py-{tag}-{uuid.uuid4().hex}"


def _stream_text(stream) -> tuple[str, list]:
    chunks = list(stream)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in chunks
        if c.choices and c.choices[0].delta is not None
    )
    return text, chunks


# 1. non-stream chat ---------------------------------------------------------------------


def test_chat_non_stream_echoes(client: openai.OpenAI):
    msg = "Hello from the python SDK"
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "You are a test."},
            {"role": "user", "content": msg},
        ],
    )
    assert resp.model, "response.model is empty"
    assert resp.object == "chat.completion"
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == msg
    assert choice.finish_reason == "stop"
    assert resp.usage is not None, "usage missing"
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


# 2. stream chat -------------------------------------------------------------------------


def test_chat_stream_concatenates_to_echo(client: openai.OpenAI):
    msg = "stream me these several words please"
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": msg}],
        stream=True,
    )
    text, chunks = _stream_text(stream)
    assert text == msg
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 1, "expected the reply split over several chunks"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_chat_stream_include_usage(client: openai.OpenAI):
    msg = "count my tokens in a stream"
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": msg}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, chunks = _stream_text(stream)
    assert text == msg
    last = chunks[-1]
    assert last.choices == [], f"last chunk should have empty choices, got {last.choices!r}"
    assert last.usage is not None, "last chunk should carry usage"
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


# 3. tools, non-stream, with the tool-result round trip ----------------------------------


def test_tools_non_stream_and_round_trip(client: openai.OpenAI):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1, f"expected one tool call, got {calls!r}"
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}

    # Round trip: the assistant turn with its tool call, then the tool's answer.
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    resp2 = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice2 = resp2.choices[0]
    # Exactly `sunny`: a re-quoted tool result would come back as `"sunny"`.
    assert choice2.message.content == "tool said: sunny"
    assert choice2.finish_reason == "stop"
    assert not choice2.message.tool_calls


# 4. tools, stream -----------------------------------------------------------------------


def test_tools_stream_accumulates_arguments(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Weather in Paris, streamed"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    tool_deltas = [
        tc
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
    ]
    assert tool_deltas, "no tool-call deltas in the stream"
    first = tool_deltas[0]
    assert first.id, "first tool-call delta has no id"
    assert first.function is not None and first.function.name == "get_weather"
    assert all(tc.index == 0 for tc in tool_deltas)
    args = "".join((tc.function.arguments or "") for tc in tool_deltas if tc.function)
    assert json.loads(args) == {"location": "Paris"}
    with_args = [tc for tc in tool_deltas if tc.function and tc.function.arguments]
    assert len(with_args) > 1, "expected the arguments split over several deltas"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


# 5. embeddings --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding_format", [None, "float"], ids=["sdk-default", "float"])
def test_embeddings(client: openai.OpenAI, encoding_format):
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    kwargs = {} if encoding_format is None else {"encoding_format": encoding_format}
    model = "openai/text-embedding-3-small"
    resp = client.embeddings.create(model=model, input=["a", "b"], **kwargs)
    assert len(resp.data) == 2
    assert [d.index for d in resp.data] == [0, 1]
    for d in resp.data:
        assert len(d.embedding) == 8
        assert all(isinstance(x, float) for x in d.embedding)
    again = client.embeddings.create(model=model, input=["a", "b"], **kwargs)
    assert again.data[0].embedding == resp.data[0].embedding
    assert again.data[1].embedding == resp.data[1].embedding


# 6. models ------------------------------------------------------------------------------


def test_models_list(client: openai.OpenAI):
    ids = [m.id for m in client.models.list()]
    assert "openai/gpt-4o-mini" in ids, f"models: {ids}"


# 7. text completion ---------------------------------------------------------------------


def test_text_completion_echoes(client: openai.OpenAI):
    resp = client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="say hi")
    assert len(resp.choices) == 1
    assert resp.choices[0].text == "say hi"


# 8. errors ------------------------------------------------------------------------------


def _assert_error_body(resp: httpx.Response) -> None:
    body = resp.json()
    assert isinstance(body.get("error"), dict), f"no error object in {body!r}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"]


def test_error_unknown_provider(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="nope/x", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 400
    _assert_error_body(exc.value.response)


def test_error_missing_messages(gateway_url: str, http: httpx.Client):
    r = http.post(f"{gateway_url}/v1/chat/completions", json={"model": CHAT_MODEL})
    assert r.status_code == 400, f"HTTP {r.status_code}: {r.text[:300]}"
    _assert_error_body(r)


def test_error_malformed_json(gateway_url: str, http: httpx.Client):
    r = http.post(
        f"{gateway_url}/v1/chat/completions",
        content=b'{"model": "openai/gpt-4o-mini", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, f"HTTP {r.status_code}: {r.text[:300]}"
    _assert_error_body(r)


def test_error_upstream_429_relayed(client: openai.OpenAI, mock_stats):
    scenario = _scenario("429")
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "rate limit me"}],
            extra_body={"mock": {"status": 429, "retry_after": 1, "scenario": scenario}},
        )
    err = exc.value
    assert err.status_code == 429
    retry_after = err.response.headers.get("retry-after")
    assert retry_after is not None, f"no retry-after header; headers={dict(err.response.headers)}"
    assert retry_after.strip() == "1"
    _assert_error_body(err.response)
    # One attempt plus network_config.max_retries (2) retries.
    assert mock_stats()["by_scenario"].get(scenario) == 3


def test_retry_then_success(client: openai.OpenAI, mock_stats):
    scenario = _scenario("503")
    msg = "retry until it works"
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": msg}],
        extra_body={"mock": {"status": 503, "fail_times": 2, "scenario": scenario}},
    )
    assert resp.choices[0].message.content == msg
    assert mock_stats()["by_scenario"].get(scenario) == 3


# 9. mid-stream cut ----------------------------------------------------------------------


def test_stream_cut_mid_way_raises(client: openai.OpenAI):
    got = []
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "this stream will be cut after two events"}],
            stream=True,
            extra_body={"mock": {"cut_after": 2}},
        )
        for chunk in stream:
            got.append(chunk)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert text != "this stream will be cut after two events"


def test_stream_cut_mid_way_wire_format(gateway_url: str, http: httpx.Client):
    """On the wire: the stream ends with a `data: {"error": ...}` event and no `[DONE]`."""
    body = {
        "model": CHAT_MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": "one two three four five six"}],
        "mock": {"cut_after": 2},
    }
    data = []
    with http.stream("POST", f"{gateway_url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, f"HTTP {r.status_code}"
        assert r.headers.get("content-type", "").startswith("text/event-stream")
        try:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line[len("data:"):].strip())
        except httpx.HTTPError:
            pass  # a dropped connection is checked below: there must be an error event first
    assert data, "no SSE events at all"
    assert "[DONE]" not in data, f"cut stream must not end with [DONE]: {data[-2:]}"
    last = json.loads(data[-1])
    assert isinstance(last.get("error"), dict), f"last event is not an error: {data[-1]}"
    assert last["error"].get("message")


# 10. offline mocker plugin --------------------------------------------------------------


def test_mocker_non_stream_offline(client: openai.OpenAI, mock_stats):
    before = mock_stats()["total"]
    msg = "answered by the mocker plugin"
    resp = client.chat.completions.create(model="mock/echo", messages=[{"role": "user", "content": msg}])
    assert resp.choices[0].message.content == msg
    assert mock_stats()["total"] == before, "mock/echo reached the upstream"


def test_mocker_stream_offline(client: openai.OpenAI, mock_stats):
    before = mock_stats()["total"]
    msg = "streamed by the mocker plugin"
    stream = client.chat.completions.create(
        model="mock/echo",
        messages=[{"role": "user", "content": msg}],
        stream=True,
    )
    text, _ = _stream_text(stream)
    assert text == msg
    assert mock_stats()["total"] == before, "mock/echo reached the upstream"


# 11. still healthy after all the bad inputs ---------------------------------------------


def test_gateway_still_healthy(gateway_url: str, http: httpx.Client, client: openai.OpenAI):
    r = http.get(f"{gateway_url}/health")
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}"
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "still alive"}]
    )
    assert resp.choices[0].message.content == "still alive"
