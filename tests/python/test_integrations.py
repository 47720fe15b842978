"""Bifrost's integration prefixes (`/litellm`, `/langchain`, `/pydanticai`): each re-mounts
the OpenAI, Anthropic and GenAI routes, so the official SDKs (which LiteLLM, LangChain and
Pydantic AI wrap) work with `base_url = <gateway>/<prefix>` unchanged."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

PREFIXES = ["litellm", "langchain", "pydanticai"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_openai_sdk_chat_stream_and_embeddings(surfaces_gateway_url: str, prefix: str):
    c = openai.OpenAI(base_url=f"{surfaces_gateway_url}/{prefix}", api_key="unused", max_retries=0)
    resp = c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"hi via {prefix}"}]
    )
    assert resp.choices[0].message.content == f"hi via {prefix}"
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in c.chat.completions.create(
            model="anthropic/claude-mock-latest",
            messages=[{"role": "user", "content": "streamed"}],
            stream=True,
        )
        if chunk.choices
    )
    assert text == "streamed"
    emb = c.embeddings.create(model="text-embedding-3-small", input="x")
    assert len(emb.data[0].embedding) > 0
    # `/v1` in the base URL works as well.
    c1 = openai.OpenAI(base_url=f"{surfaces_gateway_url}/{prefix}/v1", api_key="unused", max_retries=0)
    assert c1.chat.completions.create(
        model="mock/echo", messages=[{"role": "user", "content": "mocked"}]
    ).choices[0].message.content == "mocked"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_anthropic_sdk_messages(surfaces_gateway_url: str, prefix: str):
    c = anthropic.Anthropic(base_url=f"{surfaces_gateway_url}/{prefix}", api_key="unused", max_retries=0)
    msg = c.messages.create(
        model="claude-mock-latest",
        max_tokens=64,
        messages=[{"role": "user", "content": f"anthropic via {prefix}"}],
    )
    assert msg.content[0].text == f"anthropic via {prefix}"
    with pytest.raises(anthropic.BadRequestError):
        c.messages.create(model="claude-mock-latest", max_tokens=64, messages=[])


@pytest.mark.parametrize("prefix", PREFIXES)
def test_genai_sdk_generate_content(surfaces_gateway_url: str, prefix: str):
    c = genai.Client(
        api_key="unused",
        http_options=types.HttpOptions(base_url=f"{surfaces_gateway_url}/{prefix}"),
    )
    resp = c.models.generate_content(model="gemini-2.0-flash", contents=f"genai via {prefix}")
    assert resp.text == f"genai via {prefix}"
    streamed = "".join(
        chunk.text or ""
        for chunk in c.models.generate_content_stream(model="openai/gpt-4o-mini", contents="parts")
    )
    assert streamed == "parts"
