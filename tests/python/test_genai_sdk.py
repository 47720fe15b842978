"""Drives the gateway's Google GenAI route (`/genai`) with the official `google-genai` SDK.

Each case runs against a same-dialect upstream (`gemini-2.0-flash`: the `gemini` provider,
whose request and answer pass through untranslated) and an other-dialect one
(`openai/gpt-4o-mini`: the `openai` provider, translated both ways). Both providers point
at `mock-upstream`, which echoes the last user text, calls the first declared function
(with `{"location": "Paris"}`) until it gets a function response, then answers
`tool said: <response content>`. Faults are chosen with a top-level `"mock"` body object,
which the SDK sends through `http_options.extra_body`.
"""

from __future__ import annotations

import pytest
from google.genai import errors, types
from pydantic import BaseModel

GEMINI = "gemini-2.0-flash"
OPENAI = "openai/gpt-4o-mini"
BOTH = pytest.mark.parametrize("model", [GEMINI, OPENAI], ids=["gemini", "openai"])

WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={"location": types.Schema(type=types.Type.STRING)},
                required=["location"],
            ),
        )
    ]
)


def _config(mock: dict | None = None, **kwargs) -> types.GenerateContentConfig:
    if mock is not None:
        kwargs["http_options"] = types.HttpOptions(extra_body={"mock": mock})
    return types.GenerateContentConfig(**kwargs)


@BOTH
def test_generate_content(genai_client, model):
    resp = genai_client.models.generate_content(
        model=model,
        contents="Hello from google-genai",
        config=_config(system_instruction="You are a test.", temperature=0.2, max_output_tokens=64),
    )
    assert resp.text == "Hello from google-genai"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert usage.prompt_token_count > 0
    assert usage.total_token_count >= usage.prompt_token_count


@BOTH
def test_stream(genai_client, model):
    words = "streamed through the gateway in pieces"
    chunks = list(
        genai_client.models.generate_content_stream(
            model=model, contents=words, config=_config(mock={"chunks": 4})
        )
    )
    assert len(chunks) >= 2
    assert "".join(c.text or "" for c in chunks) == words
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.total_token_count > 0


@BOTH
def test_tool_call_round_trip(genai_client, model):
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])
    cfg = _config(tools=[WEATHER])
    first = genai_client.models.generate_content(model=model, contents=[question], config=cfg)
    calls = first.function_calls
    assert calls and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args == {"location": "Paris"}

    answer = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"content": "sunny, 21C"})],
    )
    second = genai_client.models.generate_content(
        model=model, contents=[question, first.candidates[0].content, answer], config=cfg
    )
    assert second.text.startswith("tool said: ")
    assert "sunny, 21C" in second.text


@BOTH
def test_streamed_tool_call_arrives_whole(genai_client, model):
    # The OpenAI mock splits the arguments over many deltas; Gemini sends calls whole.
    chunks = list(
        genai_client.models.generate_content_stream(
            model=model, contents="Weather?", config=_config(mock={"chunks": 6}, tools=[WEATHER])
        )
    )
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", {"location": "Paris"})]


@BOTH
def test_automatic_function_calling(genai_client, model):
    # The SDK declares the Python function, runs it on the model's call and sends the result.
    def get_weather(location: str) -> str:
        """Current weather for a city."""
        return f"sunny in {location}"

    chat = genai_client.chats.create(model=model, config=_config(tools=[get_weather]))
    resp = chat.send_message("Weather in Paris?")
    assert resp.text.startswith("tool said: ")
    assert "sunny in Paris" in resp.text
    # user question, the model's call, the function's result, the answer
    assert len(chat.get_history()) == 4


@BOTH
def test_json_schema_output(genai_client, model):
    class City(BaseModel):
        name: str
        population: int | None = None

    resp = genai_client.models.generate_content(
        model=model,
        contents="json please",
        config=_config(response_mime_type="application/json", response_schema=City),
    )
    assert resp.text == "json please"  # the mock echoes; the schema reached it translated


@BOTH
def test_upstream_error(genai_client, model):
    with pytest.raises(errors.ClientError) as exc:
        genai_client.models.generate_content(
            model=model, contents="x", config=_config(mock={"status": 400})
        )
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert "mock error 400" in exc.value.message


@BOTH
def test_mid_stream_error(genai_client, model):
    stream = genai_client.models.generate_content_stream(
        model=model,
        contents="a b c d e f g h",
        config=_config(mock={"chunks": 8, "cut_after": 2}),
    )
    seen = []
    with pytest.raises(errors.APIError) as exc:
        for chunk in stream:
            seen.append(chunk.text or "")
    assert exc.value.code >= 500
    assert "".join(seen) != "a b c d e f g h"


def test_unsupported_parameter_is_named(genai_client):
    with pytest.raises(errors.ClientError) as exc:
        genai_client.models.generate_content(model=OPENAI, contents="x", config=_config(top_k=5))
    assert exc.value.code == 400
    assert "generationConfig.topK" in exc.value.message
    # Gemini takes it.
    resp = genai_client.models.generate_content(model=GEMINI, contents="topk", config=_config(top_k=5))
    assert resp.text == "topk"


@pytest.mark.parametrize(
    "model", ["gemini-embedding-001", "openai/text-embedding-3-small"], ids=["gemini", "openai"]
)
def test_embed_content(genai_client, model):
    resp = genai_client.models.embed_content(
        model=model,
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=4),
    )
    assert len(resp.embeddings) == 2
    assert all(len(e.values) == 4 for e in resp.embeddings)
    assert resp.embeddings[0].values != resp.embeddings[1].values


def test_count_tokens_and_models(genai_client):
    counted = genai_client.models.count_tokens(model=GEMINI, contents="one two three four")
    assert counted.total_tokens == 4
    estimated = genai_client.models.count_tokens(model=OPENAI, contents="one two three four")
    assert estimated.total_tokens > 0
    names = {m.name for m in genai_client.models.list()}
    assert {"models/gemini/gemini-2.0-flash", "models/openai/gpt-4o-mini"} <= names
