"""Drives the `bifrost-grpc` binary from Python with `grpcio`: the polyglot proof.

The client stubs are generated from `proto/bifrost/v1/*.proto` at test time with
`grpc_tools.protoc` (into a temp dir, once per session), exactly as a service in another
language would generate its own. The upstream is `mock-upstream`; faults are chosen per
call with `x-bf-eh-x-mock-*` metadata, which the gateway forwards upstream as `x-mock-*`
headers (the same names as the HTTP API's headers). `mock/*` models are answered by the
gateway's mocker plugin.
"""

from __future__ import annotations

import http.server
import importlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from conftest import REPO, STARTUP_TIMEOUT_S, _binary, _free_port, _stop, _tail

CALL_TIMEOUT_S = 20.0


# --- stubs generated from proto/ -----------------------------------------------------------


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory):
    """Generates the Python messages and stubs from `proto/` and imports them."""
    out = tmp_path_factory.mktemp("grpc_stubs")
    proto_root = REPO / "proto"
    files = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "bifrost" / "v1").glob("*.proto"))
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{proto_root}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"protoc failed:\n{done.stderr}"
    sys.path.insert(0, str(out))
    try:
        types = importlib.import_module("bifrost.v1.types_pb2")
        error = importlib.import_module("bifrost.v1.error_pb2")
        service = importlib.import_module("bifrost.v1.bifrost_service_pb2")
        grpc_mod = importlib.import_module("bifrost.v1.bifrost_service_pb2_grpc")
    finally:
        sys.path.remove(str(out))

    class PB:
        t = types
        e = error
        s = service
        g = grpc_mod

    return PB


# --- the gateway ---------------------------------------------------------------------------


def _dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{_free_port()}"


def _config(upstream: str) -> dict:
    net = {"base_url": upstream, "max_retries": 0}
    return {
        "providers": {
            "openai": {"keys": [{"value": "sk-test-a", "models": [], "weight": 1}], "network_config": net},
            "groq": {
                "keys": [{"value": "gsk-test", "models": [], "weight": 1}],
                "network_config": {"base_url": _dead_url(), "max_retries": 0},
            },
        },
        "plugins": [
            {
                "name": "mocker",
                "enabled": True,
                "config": {
                    "enabled": True,
                    "default_behavior": "passthrough",
                    "rules": [
                        {
                            "name": "demo",
                            "enabled": True,
                            "priority": 1,
                            "probability": 1,
                            "conditions": {"providers": ["mock"]},
                            "responses": [
                                {"type": "success", "weight": 1, "content": {"message": "{{input}}"}}
                            ],
                        }
                    ],
                },
            }
        ],
    }


def _run_grpc_gateway(config: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Runs `bifrost-grpc` with `config` until the generator closes; yields `host:port` once
    its health service answers SERVING."""
    exe = _binary("bifrost-grpc")
    workdir = tmp_path_factory.mktemp("grpc_gateway")
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    port = _free_port()
    out_log, err_log = workdir / "stdout.log", workdir / "stderr.log"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        proc = subprocess.Popen(
            [str(exe), "-config", str(path), "-grpc-port", str(port), "-host", "127.0.0.1",
             "-log-level", "warn"],
            cwd=workdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        )
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no answer"
        with grpc.insecure_channel(target) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"bifrost-grpc exited with {proc.returncode}\n{_tail(err_log)}", pytrace=False
                    )
                try:
                    r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    last = f"status {r.status}"
                except grpc.RpcError as e:
                    last = repr(e)
                if time.monotonic() > deadline:
                    pytest.fail(f"bifrost-grpc not serving on {target} ({last})\n{_tail(err_log)}",
                                pytrace=False)
                time.sleep(0.1)
        yield target
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def grpc_target(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _run_grpc_gateway(_config(mock_url), tmp_path_factory)


@pytest.fixture(scope="session")
def channel(grpc_target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_target) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(pb, channel: grpc.Channel):
    return pb.g.BifrostServiceStub(channel)


# --- helpers -------------------------------------------------------------------------------


def _chat(pb, model: str, text: str, stream: bool = False, **kw):
    cls = pb.s.ChatCompletionStreamRequest if stream else pb.s.ChatCompletionRequest
    return cls(model=model, messages=[pb.t.ChatMessage(role=pb.t.ROLE_USER, text=text)], **kw)


def _unified(pb, err: grpc.RpcError):
    """The `bifrost.v1.BifrostError` packed in the status details (`google.rpc.Status`)."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no status details on {err!r}"
    assert status.code == err.code().value[0]
    for detail in status.details:
        if detail.Is(pb.e.BifrostError.DESCRIPTOR):
            out = pb.e.BifrostError()
            detail.Unpack(out)
            return out
    raise AssertionError(f"no BifrostError in {status.details!r}")


def _text(message) -> str:
    return message.text if message.WhichOneof("content") == "text" else ""


# --- tests ---------------------------------------------------------------------------------


def test_health_reports_serving_for_the_bifrost_service(channel: grpc.Channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("bifrost.v1.BifrostService", ""):
        r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_unary_chat_echoes_with_request_id_and_extra_fields(pb, stub):
    resp, call = stub.ChatCompletion.with_call(
        _chat(pb, "openai/gpt-4o-mini", "hello from python grpc"),
        metadata=[("x-request-id", "py-grpc-1")],
        timeout=CALL_TIMEOUT_S,
    )
    assert _text(resp.choices[0].message) == "hello from python grpc"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens > 0
    assert resp.extra_fields.provider == "openai"
    assert dict(call.initial_metadata())["x-request-id"] == "py-grpc-1"


def test_stream_yields_ordered_chunks(pb, stub):
    req = _chat(pb, "openai/gpt-4o-mini", "alpha beta gamma delta", stream=True)
    req.params.stream_options.include_usage = True
    chunks = list(stub.ChatCompletionStream(req, timeout=CALL_TIMEOUT_S))
    assert len(chunks) > 2
    text = "".join(_text(c.choices[0].delta) for c in chunks if c.choices)
    assert text == "alpha beta gamma delta"
    assert [c.extra_fields.chunk_index for c in chunks] == list(range(len(chunks)))
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].HasField("usage")


def test_tools_round_trip(pb, stub):
    tool = pb.t.Tool(type="function")
    tool.function.name = "get_weather"
    tool.function.description = "Current weather for a city"
    tool.function.parameters.update(
        {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    )
    req = _chat(pb, "openai/gpt-4o-mini", "weather in Oslo?")
    req.params.tools.append(tool)
    req.params.tool_choice.string_value = "auto"
    first = stub.ChatCompletion(req, timeout=CALL_TIMEOUT_S)
    assert first.choices[0].finish_reason == "tool_calls"
    assistant = first.choices[0].message
    call = assistant.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) is not None

    req.messages.append(assistant)
    req.messages.append(pb.t.ChatMessage(role=pb.t.ROLE_TOOL, tool_call_id=call.id, text='"sunny"'))
    second = stub.ChatCompletion(req, timeout=CALL_TIMEOUT_S)
    # The mock echoes the tool result it received: not re-quoted on the way.
    assert _text(second.choices[0].message) == 'tool said: "sunny"'


def test_extra_params_as_struct_are_forwarded(pb, stub):
    req = _chat(pb, "openai/gpt-4o-mini", "x")
    # Unknown provider parameters travel in `extra`; the mock reads its fault object there.
    req.params.extra.update({"top_k": 40, "mock": {"content": "from extra"}})
    resp = stub.ChatCompletion(req, timeout=CALL_TIMEOUT_S)
    assert _text(resp.choices[0].message) == "from extra"


def test_fallback_answers_when_the_primary_is_down(pb, stub):
    req = _chat(pb, "groq/llama-3.1-8b-instant", "fell back")
    req.fallbacks.append(pb.t.Fallback(provider="openai", model="gpt-4o-mini"))
    resp, call = stub.ChatCompletion.with_call(req, timeout=CALL_TIMEOUT_S)
    assert _text(resp.choices[0].message) == "fell back"
    assert resp.extra_fields.provider == "openai"
    assert resp.extra_fields.fallback_index == 0
    assert dict(call.initial_metadata())["x-bf-fallback-index"] == "0"


def test_invalid_argument_carries_the_unified_error(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.ChatCompletion(_chat(pb, "gpt-4o", "x"), timeout=CALL_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = _unified(pb, info.value)
    assert err.status_code == 400
    assert err.error.param == "model"
    assert err.error.type == "invalid_request_error"
    assert err.source == pb.e.ERROR_SOURCE_CLIENT
    # The same fields as the HTTP API's JSON error body.
    as_json = json_format.MessageToDict(err, preserving_proto_field_name=True)
    assert as_json["error"]["message"] == info.value.details()


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, grpc.StatusCode.UNAUTHENTICATED),
        (404, grpc.StatusCode.NOT_FOUND),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, grpc.StatusCode.INTERNAL),
        (503, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_upstream_errors_map_to_grpc_codes(pb, stub, status: int, code: grpc.StatusCode):
    with pytest.raises(grpc.RpcError) as info:
        stub.ChatCompletion(
            _chat(pb, "openai/gpt-4o-mini", "x"),
            metadata=[("x-bf-eh-x-mock-status", str(status))],
            timeout=CALL_TIMEOUT_S,
        )
    assert info.value.code() == code
    err = _unified(pb, info.value)
    assert err.status_code == status
    assert err.extra_fields.provider == "openai"
    assert not err.is_bifrost_error


def test_unconfigured_provider_is_invalid_argument(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.ChatCompletion(_chat(pb, "mistral/small", "x"), timeout=CALL_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not configured" in _unified(pb, info.value).error.message


def test_deadline_exceeded(pb, stub):
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.ChatCompletion(
            _chat(pb, "openai/gpt-4o-mini", "slow"),
            metadata=[("x-bf-eh-x-mock-delay-ms", "5000")],
            timeout=0.5,
        )
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3.0
    # The gateway answers just before the client's own timer: its unified error is there.
    status = rpc_status.from_call(info.value)
    if status is not None:
        assert _unified(pb, info.value).status_code == 504


def test_plugin_answers_mock_models(pb, stub):
    resp = stub.ChatCompletion(_chat(pb, "mock/echo", "mocker over grpc"), timeout=CALL_TIMEOUT_S)
    assert _text(resp.choices[0].message) == "mocker over grpc"
    chunks = list(stub.ChatCompletionStream(_chat(pb, "mock/echo", "mocked", stream=True),
                                            timeout=CALL_TIMEOUT_S))
    assert "".join(_text(c.choices[0].delta) for c in chunks if c.choices) == "mocked"


def test_list_models(pb, stub):
    resp = stub.ListModels(pb.s.ListModelsRequest(), timeout=CALL_TIMEOUT_S)
    assert any(m.id.startswith("openai/") for m in resp.data)


# --- cancel mid-stream: the upstream sees it -----------------------------------------------


class _EndlessSSE(http.server.BaseHTTPRequestHandler):
    """An OpenAI-style upstream streaming a chunk every 50 ms; records when a write fails
    because the gateway closed the connection (the cancel reached the upstream)."""

    protocol_version = "HTTP/1.0"
    chunks_sent = 0
    cancelled = threading.Event()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        try:
            for i in range(400):
                chunk = {
                    "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                type(self).chunks_sent += 1
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            type(self).cancelled.set()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture()
def endless_upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessSSE)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cancel_mid_stream_reaches_the_upstream(pb, endless_upstream: str, tmp_path_factory):
    gen = _run_grpc_gateway(_config(endless_upstream), tmp_path_factory)
    target = next(gen)
    try:
        with grpc.insecure_channel(target) as ch:
            stream = pb.g.BifrostServiceStub(ch).ChatCompletionStream(
                _chat(pb, "openai/gpt-4o-mini", "x", stream=True), timeout=CALL_TIMEOUT_S
            )
            got = [next(stream) for _ in range(3)]
            assert [_text(c.choices[0].delta) for c in got] == ["t0 ", "t1 ", "t2 "]
            assert not _EndlessSSE.cancelled.is_set()
            stream.cancel()
            assert _EndlessSSE.cancelled.wait(5.0), "the upstream never saw the cancel"
            assert _EndlessSSE.chunks_sent < 40
    finally:
        gen.close()
