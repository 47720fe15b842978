"""Drives the gateway's `/openai` drop-in route with the official `openai` SDK.

`base_url` is `http://host/openai`, so the SDK calls `/openai/chat/completions` (the `/v1`
form works too). Each case runs against a same-dialect upstream (a bare model name goes to
the `openai` provider) and an other-dialect one (`anthropic/…`: the Anthropic provider
translates request, answer and stream). Both point at `mock-upstream` (see
`test_anthropic_sdk.py` for its behaviour); faults come from `extra_body={"mock": …}`.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

SAME = "gpt-4o-mini"
OTHER = "anthropic/claude-mock-latest"
TARGETS = [pytest.param(SAME, id="openai-upstream"), pytest.param(OTHER, id="anthropic-upstream")]

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


@pytest.mark.parametrize("model", TARGETS)
def test_non_stream(openai_surface_client: openai.OpenAI, model: str):
    msg = "Hello through the openai route"
    resp = openai_surface_client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "You are a test."}, {"role": "user", "content": msg}],
    )
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content == msg
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("model", TARGETS)
def test_stream_with_usage(openai_surface_client: openai.OpenAI, model: str):
    msg = "stream these several words please"
    chunks = list(openai_surface_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": msg}], stream=True,
        stream_options={"include_usage": True},
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == msg
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert any(c.usage and c.usage.total_tokens > 0 for c in chunks)


@pytest.mark.parametrize("model", TARGETS)
def test_tool_call_round_trip(openai_surface_client: openai.OpenAI, model: str):
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = openai_surface_client.chat.completions.create(
        model=model, messages=[question], tools=[WEATHER_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    second = openai_surface_client.chat.completions.create(
        model=model,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "tool_calls": [call.model_dump(exclude_none=True)]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].message.content == "tool said: sunny"


@pytest.mark.parametrize("model", TARGETS)
def test_streamed_tool_call_reassembles(openai_surface_client: openai.OpenAI, model: str):
    chunks = list(openai_surface_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL],
        stream=True,
    ))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) >= 3
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    args = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(args) == {"location": "Paris"}


@pytest.mark.parametrize("model", TARGETS)
def test_rate_limit_is_an_openai_error(openai_surface_client: openai.OpenAI, model: str):
    with pytest.raises(openai.RateLimitError) as exc:
        openai_surface_client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"status": 429}},
        )
    assert exc.value.status_code == 429
    assert set(exc.value.body) >= {"message", "type"}


@pytest.mark.parametrize("model", TARGETS)
def test_mid_stream_failure_raises(openai_surface_client: openai.OpenAI, model: str):
    stream = openai_surface_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True, extra_body={"mock": {"cut_after": 3, "chunks": 6}},
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_unsupported_parameter_is_a_400_naming_it(openai_surface_client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as exc:
        openai_surface_client.chat.completions.create(
            model=OTHER, seed=7, messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.body["param"] == "seed"
    assert exc.value.body["code"] == "unsupported_parameter"
    ok = openai_surface_client.chat.completions.create(
        model=SAME, seed=7, messages=[{"role": "user", "content": "x"}]
    )
    assert ok.choices[0].message.content == "x"


@pytest.mark.parametrize("model", TARGETS)
def test_json_schema_response_format(openai_surface_client: openai.OpenAI, model: str):
    resp = openai_surface_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "{\"city\": \"Paris\"}"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}},
    )
    assert json.loads(resp.choices[0].message.content) == {"city": "Paris"}


def test_embeddings_completions_and_models(openai_surface_client: openai.OpenAI):
    emb = openai_surface_client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0
    comp = openai_surface_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    assert comp.choices[0].text
    ids = [m.id for m in openai_surface_client.models.list()]
    assert "openai/gpt-4o-mini" in ids
    assert any(i.startswith("anthropic/") for i in ids)
    with pytest.raises(openai.NotFoundError):
        openai_surface_client.models.retrieve("no-such-model")


def test_v1_prefix_and_unknown_route(surfaces_gateway_url: str):
    r = httpx.post(
        f"{surfaces_gateway_url}/openai/v1/chat/completions",
        json={"model": SAME, "messages": [{"role": "user", "content": "v1 form"}]},
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "v1 form"
    r = httpx.get(f"{surfaces_gateway_url}/openai/v1/nope")
    assert r.status_code == 404 and "message" in r.json()["error"]


def test_mocker_plugin_still_answers(openai_surface_client: openai.OpenAI):
    resp = openai_surface_client.chat.completions.create(
        model="mock/echo", messages=[{"role": "user", "content": "from the mocker"}]
    )
    assert resp.choices[0].message.content == "from the mocker"
